"""The simulated organisation: business services, resolver groups and their agents, customers. Pure, seeded.

One service is deliberately a watermelon (answered and resolved fast, so its SLAs are green, but its
fixes rarely address what the customer needed) and one is overloaded (slow, so its SLAs breach): a
dashboard that shows both sides of the street has something to show on each.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

PLATFORMS = ("jira", "zendesk", "servicenow")


@dataclass(frozen=True)
class BusinessService:
    """A business service as customers know it; `id` is what every platform carries for it."""

    id: str
    name: str
    group: str
    volume: float  # relative share of tickets
    speed: float  # multiplies agents' pickup and work times: below 1 is faster
    care: float  # the chance that a resolution fixes what the customer actually needed
    reopen_rate: float
    outages_per_week: float
    topics: tuple[str, ...]

    @property
    def watermelon(self) -> bool:
        """Fast enough to keep its SLAs green, careless enough to leave customers unhappy."""
        return self.speed < 1 and self.care < 0.5


@dataclass(frozen=True)
class Agent:
    """A support agent; `index` makes the platform identifiers."""

    index: int
    name: str
    group: str

    @property
    def user_name(self) -> str:
        return self.name.lower().replace(" ", ".")

    @property
    def email(self) -> str:
        return f"{self.user_name}@it.bothways.example"


@dataclass(frozen=True)
class Customer:
    """Someone who raises tickets; their organisation decides which platform they use."""

    index: int
    name: str
    organisation: str
    domain: str
    platform: str

    @property
    def user_name(self) -> str:
        return f"{self.name.lower().replace(' ', '.')}{self.index}"

    @property
    def email(self) -> str:
        return f"{self.user_name}@{self.domain}"


@dataclass(frozen=True)
class Organisation:
    """Everyone in the simulation."""

    services: tuple[BusinessService, ...]
    agents: tuple[Agent, ...]
    customers: tuple[Customer, ...]

    def agents_of(self, group: str) -> tuple[Agent, ...]:
        """The agents of one resolver group (every group has at least one)."""
        return tuple(agent for agent in self.agents if agent.group == group)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(service.group for service in self.services))


def _service(id: str, name: str, group: str, topics: tuple[str, ...], **traits: float) -> BusinessService:
    defaults = {"volume": 1.0, "speed": 1.0, "care": 0.92, "reopen_rate": 0.07, "outages_per_week": 0.3}
    return BusinessService(id=id, name=name, group=group, topics=topics, **{**defaults, **traits})


# The watermelon comes second and the overloaded service third, so that any organisation of three or
# more services has both.
CATALOGUE = (
    _service(
        "email",
        "E-mail",
        "Workplace",
        ("Cannot send mail", "Mailbox full", "Shared mailbox missing", "Calendar invites not arriving"),
        volume=1.4,
    ),
    _service(
        "hr-portal",
        "HR portal",
        "Business Applications",
        ("Payslip not visible", "Leave request stuck", "Cannot update bank details", "Wrong manager shown"),
        speed=0.45,
        care=0.3,
        reopen_rate=0.04,
    ),
    _service(
        "erp",
        "ERP",
        "Business Applications",
        ("Invoice posting fails", "Purchase order locked", "Report times out", "Missing authorisation"),
        speed=2.6,
        care=0.85,
        reopen_rate=0.14,
        volume=1.1,
    ),
    _service(
        "vpn",
        "VPN",
        "Network",
        ("VPN disconnects every few minutes", "Cannot connect from hotel", "Token not accepted"),
        outages_per_week=0.8,
    ),
    _service(
        "webshop",
        "Webshop",
        "Applications",
        ("Checkout fails", "Order confirmation missing", "Prices wrong in cart", "Login loop"),
        outages_per_week=0.6,
    ),
    _service(
        "laptops",
        "Laptops",
        "Workplace",
        ("Laptop will not boot", "New laptop request", "Docking station not detected", "Battery swollen"),
        volume=1.2,
    ),
    _service("wifi", "Office Wi-Fi", "Network", ("No Wi-Fi on 3rd floor", "Guest Wi-Fi password")),
    _service("printing", "Printing", "Workplace", ("Printer offline", "Toner empty", "Scan to mail fails")),
    _service("crm", "CRM", "Applications", ("Contact sync broken", "Cannot export leads", "Slow search")),
    _service("payroll", "Payroll", "Business Applications", ("Overtime missing", "Tax code wrong")),
)

ORGANISATIONS = (
    ("Head Office", "hq.globex.example", "jira"),
    ("Retail Stores", "stores.globex.example", "zendesk"),
    ("Plant Hamburg", "plant.globex.example", "servicenow"),
    ("Finance", "finance.globex.example", "jira"),
    ("Sales", "sales.globex.example", "zendesk"),
    ("Logistics", "logistics.globex.example", "servicenow"),
)
FIRST_NAMES = (
    "Dana",
    "Ravi",
    "Mia",
    "Jonas",
    "Lea",
    "Omar",
    "Sofia",
    "Felix",
    "Amara",
    "Lukas",
    "Hana",
    "Noah",
    "Ines",
    "Theo",
    "Yara",
    "Emil",
    "Zoe",
    "Karim",
    "Lena",
    "Paul",
    "Nora",
    "Malik",
    "Clara",
    "Ben",
    "Aylin",
    "Max",
    "Ida",
    "Tariq",
    "Greta",
    "Leon",
)
LAST_NAMES = (
    "Whitfield",
    "Okafor",
    "Novak",
    "Schmidt",
    "Haddad",
    "Berger",
    "Rossi",
    "Kowalski",
    "Yilmaz",
    "Lindqvist",
    "Mensah",
    "Tanaka",
    "Dubois",
    "Keller",
    "Moreau",
    "Petrov",
    "Santos",
    "Fischer",
    "Nakamura",
    "Wagner",
    "Costa",
    "Jensen",
    "Brandt",
    "Silva",
    "Horvat",
)


def build_organisation(*, seed: int, services: int, agents: int, customers: int) -> Organisation:
    """The organisation of a seed: the first `services` of the catalogue (then numbered apps), its people."""
    if services < 3:
        raise ValueError("at least 3 business services, so that the watermelon and the overloaded one exist")
    rng = random.Random(f"{seed}:organisation")
    chosen = tuple(_nth_service(n) for n in range(services))
    groups = tuple(dict.fromkeys(service.group for service in chosen))
    if agents < len(groups):
        raise ValueError(f"at least {len(groups)} agents: one for each resolver group")
    return Organisation(
        services=chosen,
        agents=tuple(Agent(index=n, name=_name(rng), group=groups[n % len(groups)]) for n in range(agents)),
        customers=tuple(_customer(rng, index=n) for n in range(max(customers, 1))),
    )


def _nth_service(n: int) -> BusinessService:
    if n < len(CATALOGUE):
        return CATALOGUE[n]
    return _service(
        f"app-{n + 1}", f"Application {n + 1}", "Applications", ("Error on save", "Access request")
    )


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _customer(rng: random.Random, *, index: int) -> Customer:
    organisation, domain, platform = rng.choice(ORGANISATIONS)
    return Customer(index=index, name=_name(rng), organisation=organisation, domain=domain, platform=platform)


def stable_hex(*parts: object, length: int = 32) -> str:
    """A hex identifier derived from `parts` (platform ids, sys_ids), the same in every run."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:length]
