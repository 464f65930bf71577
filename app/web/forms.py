"""The one shape of a form on a page: the values typed and the errors per field.

Templates read `f.values.<field>` and `f.errors.<field>`; `f.errors._form` is a problem with the form
as a whole. A refused submission re-renders with the refusal's status (422 for invalid input, 409
for a conflict, as the API answers), and htmx is configured to swap those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.services.errors import FORM, ServiceError


@dataclass
class FormState:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def refused(cls, values: Mapping[str, str], exc: ServiceError) -> FormState:
        """The form as typed, with the refusal's messages on its fields (or on the whole form)."""
        return cls(dict(values), dict(exc.errors) or {FORM: exc.message})

    @property
    def ok(self) -> bool:
        return not self.errors
