from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "onestop.core"
    label = "core"
    verbose_name = _("Core")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from onestop.core import navigation
        from onestop.core.models import AuditEvent, Contact, Customer, Site, Team, User

        # Gaps in the order leave room for the entries of the apps built on core.
        for order, key, label, model in (
            (100, "customer", _("Customers"), Customer),
            (200, "site", _("Sites"), Site),
            (300, "contact", _("Contacts"), Contact),
            (600, "team", _("Teams"), Team),
            (700, "user", _("Users"), User),
            (900, "audit", _("Audit log"), AuditEvent),
        ):
            navigation.register(
                key=key, label=label, url_name=f"{key}_list", model=model, order=order
            )
        for key, model in (
            ("customer", Customer),
            ("site", Site),
            ("contact", Contact),
            ("team", Team),
            ("user", User),
        ):
            navigation.register_detail(
                object_type=model._meta.label_lower, url_name=f"{key}_detail"
            )
