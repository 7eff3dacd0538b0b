from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "onestop.monitoring"
    label = "monitoring"
    verbose_name = _("Monitoring")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from onestop.assets.models import Device
        from onestop.core import navigation
        from onestop.monitoring.models import Check

        # The device pages live here: a device's page is mostly what monitoring knows of it
        # (agent status, live charts), and the asset register does not import monitoring.
        navigation.register(
            key="device", label=_("Devices"), url_name="device_list", model=Device, order=70
        )
        navigation.register_detail(object_type="assets.device", url_name="device_detail")
        # One entry for what needs attention; check templates, maintenance windows and SNMP
        # credentials are tabs on its page (their URL names start with "monitoring_" too).
        navigation.register(
            key="monitoring",
            label=_("Problems"),
            url_name="monitoring_problem_list",
            model=Check,
            order=75,
        )
        navigation.register_detail(object_type="monitoring.check", url_name="device_check_detail")
