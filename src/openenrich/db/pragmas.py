def sqlite_pragmas(synchronous: str) -> list[str]:
    """Run on every SQLite connection we open."""
    return [
        "PRAGMA journal_mode=WAL",
        f"PRAGMA synchronous={synchronous}",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
    ]
