from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotifyConfig(AppConfig):
    name = "onestop.notify"
    label = "notify"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from onestop.core import navigation
        from onestop.notify.models import Channel, Notification

        navigation.register(
            key="notification",
            label=_("Notifications"),
            url_name="notification_list",
            model=Notification,
            order=950,
        )
        # Channels, rules and the delivery log share one entry (tabs on the pages).
        navigation.register(
            key="notification_channel",
            label=_("Channels"),
            url_name="notification_channel_list",
            model=Channel,
            order=960,
        )
