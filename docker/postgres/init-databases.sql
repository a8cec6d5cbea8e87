-- Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d/).
-- One database per ncc instance; each instance migrates its own schema at start.
-- Keep this list in step with the NCC_DB of the services in docker-compose.yml (a test checks it).
CREATE DATABASE ncc_hub;
CREATE DATABASE ncc_de;
CREATE DATABASE ncc_fr;
CREATE DATABASE ncc_ee;
