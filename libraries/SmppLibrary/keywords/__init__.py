"""SmppLibrary's keyword components; the façade in ``SmppLibrary/__init__.py`` composes them."""

from SmppLibrary.keywords.bind import BindKeywords
from SmppLibrary.keywords.bulk import BulkKeywords
from SmppLibrary.keywords.carrier import CarrierKeywords
from SmppLibrary.keywords.delivery import DeliveryKeywords
from SmppLibrary.keywords.submit import SubmitKeywords

__all__ = ["BindKeywords", "BulkKeywords", "CarrierKeywords", "DeliveryKeywords", "SubmitKeywords"]
