"""What callers hand the service layer: who asks, for whom, and the context it runs in.

Rule: plain frozen values, no behaviour. Channels, the CLI and the engine's backend
build these; the service layer never sees a raw provider request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from assistant.booking.identity import Keyring
from assistant.booking.uow import UnitOfWorkFactory
from assistant.config import Settings


@dataclass(frozen=True)
class ServiceContext:
    uow: UnitOfWorkFactory
    keyring: Keyring
    settings: Settings


@dataclass(frozen=True)
class IdentityInput:
    """Who the booking is for, as the patient or a relative typed it."""

    kind: str
    number: str
    name: str
    birth_date: date | None = None
    # A generic number is unique only within its document type and issuing country.
    document: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class AddressInput:
    """Where a request came from: kind is phone, telegram or console."""

    kind: str
    value: str


@dataclass(frozen=True)
class CodeHolder:
    """Someone holding a booking code and the last four characters of the patient's ID
    number, like an airline's booking reference and surname: how a patient acts on a
    booking a relative made. Knowing the ID number alone gives no rights."""

    id_last4: str
    via: AddressInput | None = None  # where the holder writes from, if anywhere


@dataclass(frozen=True)
class Staff:
    username: str


# Who asks to change a booking: the address that made it, a code holder, or staff.
Requester = AddressInput | CodeHolder | Staff
