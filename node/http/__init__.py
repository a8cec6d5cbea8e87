"""HTTP transport: app factory, middleware, auth, views, OpenAPI."""
