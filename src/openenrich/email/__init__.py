"""Email verification: is there a mailbox behind an address?

`verifier.EmailVerifier` checks the syntax (`syntax.py`), finds the mail servers (`mx.py`),
looks the domain and local part up in lists (`lists.py`), asks the mail server with an SMTP
probe when the operator enabled it (`probe.py`), and decides a verdict from what it saw
(`verdict.py`). Surfaces call it: lead validation jobs, the verification tools.
"""
