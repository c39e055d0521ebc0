"""The HTTP floor: requests/s this server reaches on this machine for the cheapest routes.

    .venv/bin/python bench/http_floor.py [--seconds 10] [--runs 3] [--connections 32]
                                         [--database-url postgresql://…]

Every later benchmark compares against these figures. Measured:
- `GET /api/auth/me`: the authenticated floor (key lookup by digest, plan, JSON answer);
- `GET /api/auth/me` on a rate-limited plan: the same plus a token-bucket take;
- `GET /health`: unauthenticated, one `SELECT 1`.
"""

from __future__ import annotations

import argparse

from harness import BenchServer, cycle, http_request, report, run_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with BenchServer(database_url=args.database_url) as server:
        key = server.make_key("floor", role="read")
        limited_key = server.make_key("floor-limited", role="read")
        server.cli("plans", "set", "bench-limited", "--rps", "1000000")
        server.cli("orgs", "set-plan", "floor-limited", "bench-limited")
        backend = args.database_url.split(":")[0] if args.database_url else "sqlite"
        print(
            f"http floor: {args.connections} keep-alive connections, {args.runs} runs of "
            f"{args.seconds:.0f} s, database {backend}, one server process"
        )
        cases = [
            ("GET /api/auth/me", http_request("GET", "/api/auth/me", {"X-API-Key": key})),
            (
                "GET /api/auth/me (limited)",
                http_request("GET", "/api/auth/me", {"X-API-Key": limited_key}),
            ),
            ("GET /health", http_request("GET", "/health", {})),
        ]
        for name, request in cases:
            run_load(server.port, cycle([request]), connections=args.connections, seconds=2)
            runs = [
                run_load(
                    server.port,
                    cycle([request]),
                    connections=args.connections,
                    seconds=args.seconds,
                )
                for _ in range(args.runs)
            ]
            report(name, runs, server.peak_rss_mib())


if __name__ == "__main__":
    main()
