"""Keywords for SMS campaigns: contacts, start, progress, per-recipient status."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from assertionengine import AssertionOperator
from robotlibcore import keyword

from PlatformLibrary.keywords.base import PlatformComponent, compact, listing

Coding = Literal["auto", "gsm7", "ucs2"]
CampaignStatus = Literal["draft", "running", "completed", "cancelled"]
RecipientStatus = Literal["pending", "queued", "accepted", "delivered", "failed", "cancelled"]
PROGRESS_FIGURES = ("total", "pending", "sent", "delivered", "failed", "cancelled")


class CampaignKeywords(PlatformComponent):
    @keyword(name="Create SMS Campaign")
    def create_sms_campaign(
        self,
        name: str,
        sender: str,
        *,
        text: str | None = None,
        template_id: int | None = None,
        coding: Coding = "auto",
        rate_per_second: float = 10.0,
    ) -> dict[str, Any]:
        """Creates a ``draft`` campaign of one ``text``, or of a template filled per contact.

        ``rate_per_second`` paces the sending (at most 100).

        | ${campaign}= | `Create SMS Campaign` | spring-${NS} | Acme | template_id=${template}[id] |
        """
        body = compact(
            {
                "name": name,
                "from": sender,
                "text": text,
                "template_id": template_id,
                "coding": coding,
                "rate_per_second": rate_per_second,
            }
        )
        campaign: dict[str, Any] = self.ctx.request("POST", "/campaigns", json_body=body, expected=(201,))
        return campaign

    @keyword
    def upload_campaign_contacts(self, campaign_id: int, contacts: list[Any]) -> dict[str, Any]:
        """Adds contacts to a draft campaign: numbers, or dictionaries with ``to`` and ``variables``.

        | ${contacts}= | Create List | +254700000001 | +254700000002 |
        | `Upload Campaign Contacts` | ${campaign}[id] | ${contacts} |
        | `Upload Campaign Contacts` | ${campaign}[id] | ${{ [{'to': $to, 'variables': {'name': 'Ann'}}] }} |
        """
        items = [item if isinstance(item, dict) else {"to": str(item)} for item in contacts]
        answer: dict[str, Any] = self.ctx.request(
            "POST", f"/campaigns/{campaign_id}/contacts", json_body=items, expected=(201,)
        )
        return answer

    @keyword(name="Upload Campaign Contacts From CSV")
    def upload_campaign_contacts_from_csv(self, campaign_id: int, csv: str) -> dict[str, Any]:
        """Adds contacts from CSV: the path of a ``.csv`` file, or the CSV text itself. The header needs a ``to``
        column; the other columns are the template's variables.

        | `Upload Campaign Contacts From CSV` | ${campaign}[id] | ${CURDIR}/data/contacts.csv |
        """
        path = Path(csv)
        text = path.read_text(encoding="utf-8") if "\n" not in csv and csv.endswith(".csv") and path.is_file() else csv
        answer: dict[str, Any] = self.ctx.request(
            "POST",
            f"/campaigns/{campaign_id}/contacts",
            data=text.encode("utf-8"),
            headers={"Content-Type": "text/csv"},
            expected=(201,),
        )
        return answer

    @keyword(name="Start SMS Campaign")
    def start_sms_campaign(self, campaign_id: int) -> dict[str, Any]:
        """Starts sending a draft campaign; returns it ``running``."""
        campaign: dict[str, Any] = self.ctx.request("POST", f"/campaigns/{campaign_id}/start", expected=(200,))
        return campaign

    @keyword(name="Cancel SMS Campaign")
    def cancel_sms_campaign(self, campaign_id: int) -> dict[str, Any]:
        """Cancels a draft or running campaign; recipients not sent yet become ``cancelled``."""
        campaign: dict[str, Any] = self.ctx.request("POST", f"/campaigns/{campaign_id}/cancel", expected=(200,))
        return campaign

    @keyword(name="Get SMS Campaign")
    def get_sms_campaign(self, campaign_id: int) -> dict[str, Any]:
        """Returns the campaign with its ``status`` and ``progress``."""
        campaign: dict[str, Any] = self.ctx.request("GET", f"/campaigns/{campaign_id}", expected=(200,))
        return campaign

    @keyword
    def get_campaign_status(
        self,
        campaign_id: int,
        assertion_operator: AssertionOperator | None = None,
        expected: CampaignStatus | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> str:
        """Returns the campaign's status, optionally asserting it (re-read until ``timeout``).

        A running campaign becomes ``completed`` once every recipient has a final state.

        | `Get Campaign Status` | ${campaign}[id] | == | completed | timeout=30s |
        """
        label = message or f"Status of campaign {campaign_id}"
        return self._assert(
            lambda: self.get_sms_campaign(campaign_id)["status"], assertion_operator, expected, timeout, label
        )

    @keyword
    def get_campaign_progress(
        self,
        campaign_id: int,
        figure: str | None = None,
        assertion_operator: AssertionOperator | None = None,
        expected: int | None = None,
        *,
        timeout: timedelta = timedelta(0),
        message: str = "",
    ) -> Any:
        """Returns the campaign's progress (``total``, ``pending``, ``sent``, ``delivered``, ``failed``,
        ``cancelled``), or one ``figure`` of it, optionally asserting that figure (re-read until ``timeout``).

        | ${progress}= | `Get Campaign Progress` | ${campaign}[id] |
        | `Get Campaign Progress` | ${campaign}[id] | delivered | == | 3 | timeout=20s |
        """
        if figure is None:
            if assertion_operator is not None:
                raise ValueError("Give the figure to check, e.g. `Get Campaign Progress  ${id}  delivered  ==  3`.")
            return dict(self.get_sms_campaign(campaign_id)["progress"])
        if figure not in PROGRESS_FIGURES:
            raise ValueError(f"Campaign progress has no figure '{figure}'; use one of {', '.join(PROGRESS_FIGURES)}.")
        label = message or f"Progress '{figure}' of campaign {campaign_id}"
        return self._assert(
            lambda: int(self.get_sms_campaign(campaign_id)["progress"][figure]),
            assertion_operator,
            expected,
            timeout,
            label,
        )

    @keyword
    def get_campaign_recipients(
        self, campaign_id: int, *, status: RecipientStatus | None = None
    ) -> list[dict[str, Any]]:
        """Returns the campaign's recipients in upload order: ``to``, ``status``, ``sms_id``, ``error``."""
        return listing(
            self.ctx.request("GET", f"/campaigns/{campaign_id}/recipients", params={"status": status}, expected=(200,))
        )
