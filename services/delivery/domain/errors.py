"""The refusals of the delivery domain, each with its problem type (problem+json is mapped in libs)."""

from __future__ import annotations

from libs.runtime.errors import Conflict, DomainError, NotFound


class DuplicateReference(Conflict):
    """A goods receipt's ``reference`` is unique per sku: the same delivery note is not booked twice."""

    slug = "duplicate-reference"
    title = "This receipt reference was already booked for the sku"


class SkuNotStocked(NotFound):
    slug = "sku-not-found"


class ShipmentNotFound(NotFound):
    slug = "shipment-not-found"


class OrderNotFound(NotFound):
    slug = "order-not-found"


class ReturnNotFound(NotFound):
    slug = "return-not-found"


class ExceedsRemaining(Conflict):
    """A dispatch may ship only what remains on the shipment, sku by sku."""

    slug = "exceeds-remaining"
    title = "More than remains to ship"


class ShipmentCancelled(Conflict):
    slug = "shipment-cancelled"
    title = "The order was cancelled; its shipment will not ship"


class NotFullyDispatched(Conflict):
    """Proof of delivery is recorded only once every line has been dispatched."""

    slug = "not-fully-dispatched"
    title = "The shipment has not been dispatched completely"


class AlreadyDelivered(Conflict):
    slug = "already-delivered"
    title = "The shipment was already delivered"


class DeliveredBeforeDispatch(DomainError):
    slug = "delivered-before-dispatch"
    title = "Delivery cannot precede the dispatch"


class ExceedsReturnable(Conflict):
    """A return may name only goods dispatched for the order and not returned yet."""

    slug = "exceeds-returnable"
    title = "More than was dispatched and not yet returned"


class ExceedsRequested(Conflict):
    """A return is received for at most the quantities that were requested."""

    slug = "exceeds-requested"
    title = "More than the return requested"


class ReturnAlreadyReceived(Conflict):
    slug = "return-already-received"
    title = "The return was already received"


class ReturnNotReceived(Conflict):
    slug = "return-not-received"
    title = "The return has not been received yet"


class ReturnAlreadyInspected(Conflict):
    slug = "return-already-inspected"
    title = "The return was already inspected"


class ExceedsReceived(Conflict):
    """An inspection accounts for at most the units received, sku by sku."""

    slug = "exceeds-received"
    title = "More than the return received"


class InspectionIncomplete(Conflict):
    """An inspection accounts for every received unit: restocked, scrapped or repaired."""

    slug = "inspection-incomplete"
    title = "Some received units have no inspection outcome"


class OutcomeNotForKind(Conflict):
    """A repair return's units are repaired (they stay the partner's); other returns' units are
    restocked or scrapped."""

    slug = "outcome-not-for-kind"
    title = "This inspection outcome does not fit the return's kind"


class InsufficientStock(Conflict):
    """A replacement ships from available stock (on hand and not allocated to orders)."""

    slug = "insufficient-stock"
    title = "Not enough available stock for the replacement"
