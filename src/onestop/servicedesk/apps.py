from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServicedeskConfig(AppConfig):
    name = "onestop.servicedesk"
    label = "servicedesk"
    verbose_name = _("Service desk")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from onestop.core import navigation
        from onestop.notify.registry import register_recipients
        from onestop.servicedesk.models import KnowledgeArticle, Ticket
        from onestop.servicedesk.selectors import (
            ticket_notification_recipients,
            visit_notification_recipients,
        )

        # First in the menu: tickets are where the desk spends its day. The queue, "my work"
        # and the dispatcher board share the entry (tabs on the pages); customers get their list.
        navigation.register(
            key="ticket", label=_("Tickets"), url_name="ticket_list", model=Ticket, order=50
        )
        navigation.register_detail(object_type="servicedesk.ticket", url_name="ticket_detail")
        navigation.register(
            key="knowledge",
            label=_("Knowledge base"),
            url_name="knowledge_list",
            model=KnowledgeArticle,
            order=60,
        )
        navigation.register_detail(
            object_type="servicedesk.knowledgearticle", url_name="knowledge_detail"
        )
        register_recipients(
            object_type="servicedesk.ticket", resolver=ticket_notification_recipients
        )
        navigation.register_detail(object_type="servicedesk.visit", url_name="ticket_visit")
        register_recipients(object_type="servicedesk.visit", resolver=visit_notification_recipients)
