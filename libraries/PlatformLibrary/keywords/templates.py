"""Keywords for SMS templates with ``{{variables}}``."""

from __future__ import annotations

from typing import Any

from robotlibcore import keyword

from PlatformLibrary.keywords.base import PlatformComponent, compact, listing


class TemplateKeywords(PlatformComponent):
    @keyword(name="Create SMS Template")
    def create_sms_template(self, name: str, body: str) -> dict[str, Any]:
        """Creates an SMS template; ``{{name}}`` placeholders become ``${template}[variables]``.

        | ${template}= | `Create SMS Template` | otp-${NS} | Your code is {{code}} |
        """
        template: dict[str, Any] = self.ctx.request(
            "POST", "/templates", json_body={"name": name, "body": body}, expected=(201,)
        )
        return template

    @keyword(name="Get SMS Template")
    def get_sms_template(self, template_id: int) -> dict[str, Any]:
        """Returns template ``template_id``."""
        template: dict[str, Any] = self.ctx.request("GET", f"/templates/{template_id}", expected=(200,))
        return template

    @keyword(name="Get SMS Templates")
    def get_sms_templates(self) -> list[dict[str, Any]]:
        """Returns the account's templates."""
        return listing(self.ctx.request("GET", "/templates", expected=(200,)))

    @keyword(name="Update SMS Template")
    def update_sms_template(
        self, template_id: int, *, name: str | None = None, body: str | None = None
    ) -> dict[str, Any]:
        """Changes a template's ``name`` and/or ``body``."""
        if name is None and body is None:
            raise ValueError("Update SMS Template needs name= or body=.")
        template: dict[str, Any] = self.ctx.request(
            "PATCH", f"/templates/{template_id}", json_body=compact({"name": name, "body": body}), expected=(200,)
        )
        return template

    @keyword(name="Delete SMS Template")
    def delete_sms_template(self, template_id: int) -> None:
        """Deletes a template (refused with 409 while a draft or running campaign uses it)."""
        self.ctx.request("DELETE", f"/templates/{template_id}", expected=(204,))

    @keyword(name="Render SMS Template")
    def render_sms_template(self, template_id: int, **variables: Any) -> str:
        """Returns the text template ``template_id`` gives with ``variables``; a missing one fails with 422
        naming ``variables.<name>``.

        | ${text}= | `Render SMS Template` | ${template}[id] | code=1234 |
        """
        body = {"variables": {name: str(value) for name, value in variables.items()}}
        rendered = self.ctx.request("POST", f"/templates/{template_id}/render", json_body=body, expected=(200,))
        return str(rendered["text"])
