from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ContractsConfig(AppConfig):
    name = "onestop.contracts"
    label = "contracts"
    verbose_name = _("Contracts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from onestop.contracts.models import BusinessCalendar, Contract, SlaPolicy
        from onestop.core import navigation

        # After the customers, sites and contacts of core (100–300), before its teams (600).
        navigation.register(
            key="contract",
            label=_("Contracts"),
            url_name="contract_list",
            model=Contract,
            order=400,
        )
        navigation.register(
            key="sla_policy",
            label=_("SLA policies"),
            url_name="sla_policy_list",
            model=SlaPolicy,
            order=500,
        )
        navigation.register(
            key="calendar",
            label=_("Calendars"),
            url_name="calendar_list",
            model=BusinessCalendar,
            order=550,
        )
        for model, url_name in (
            (Contract, "contract_detail"),
            (SlaPolicy, "sla_policy_detail"),
            (BusinessCalendar, "calendar_detail"),
        ):
            navigation.register_detail(object_type=model._meta.label_lower, url_name=url_name)
