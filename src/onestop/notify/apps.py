from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotifyConfig(AppConfig):
    name = "onestop.notify"
    label = "notify"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from onestop.core import navigation
        from onestop.notify.models import Notification

        navigation.register(
            key="notification",
            label=_("Notifications"),
            url_name="notification_list",
            model=Notification,
            order=950,
        )
