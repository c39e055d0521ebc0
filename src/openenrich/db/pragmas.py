MMAP_SIZE = 256 * 1024 * 1024


def sqlite_pragmas(synchronous: str) -> list[str]:
    """Run on every SQLite connection we open."""
    return [
        "PRAGMA journal_mode=WAL",
        f"PRAGMA synchronous={synchronous}",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
        # Reads through a shared memory map instead of a read() per page into each
        # connection's own 2 MB cache: a flush's session state lookups (50,000 users) spent
        # a third of their time copying pages in the kernel.
        f"PRAGMA mmap_size={MMAP_SIZE}",
    ]
