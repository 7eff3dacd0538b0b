"""In-app notifications: what each user was told, and whether they have read it.

The channels issue adds email and chat deliveries on top of the same rows.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from onestop.core.models import DomainEvent, User


class Notification(models.Model):
    """One event told to one user; unique per (user, event), so dispatching twice adds nothing."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    event = models.ForeignKey(DomainEvent, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=64)
    subject = models.CharField(_("subject"), max_length=300)
    url = models.CharField(max_length=300, blank=True)
    customer_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(fields=["user", "event"], name="notification_once_per_user")
        ]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_inbox")]

    def __str__(self) -> str:
        return self.subject

    @staticmethod
    def scope_filter(user: User, customer_ids: set[int] | None) -> models.Q:
        """Everyone sees only their own notifications."""
        return models.Q(user=user)
