"""Services: what the node and the hub do, between the HTTP views and the storage layer."""
