from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MetricsConfig(AppConfig):
    name = "onestop.metrics"
    label = "metrics"
    verbose_name = _("Metric store")
    default_auto_field = "django.db.models.BigAutoField"
