"""The lab's Kong stand-in: Kong 3.4's Admin API and proxy, faithful enough for decK and the suites.

``python -m lab.kong --config FILE`` runs one node; two nodes naming the same ``database`` form a cluster
(an entity written through one is served by the other). Modules:

- `config`: the JSON configuration file.
- `store`: the shared database (SQLAlchemy Core; SQLite file by default).
- `schema`, `errors`: Kong's entities, validation and error bodies.
- `admin`: the Admin API.
- `router`, `plugins`, `balancer`, `proxy`: route matching, key-auth/acl/rate-limiting/correlation-id,
  upstream load balancing with health checks, and forwarding.
- `server`, `node`: HTTP plumbing and the process's two listeners.
"""
