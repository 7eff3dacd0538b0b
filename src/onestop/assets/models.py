"""The asset register: the customer devices the provider looks after, and how their inventory
changed over time."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from onestop.contracts.models import Contract
from onestop.core.models import Customer, Site


class Device(models.Model):
    """One customer device: from an agent, entered by hand, imported or discovered."""

    class Kind(models.TextChoices):
        DESKTOP = "desktop", _("Desktop")
        LAPTOP = "laptop", _("Laptop")
        SERVER = "server", _("Server")
        SWITCH = "switch", _("Switch")
        ROUTER = "router", _("Router")
        FIREWALL = "firewall", _("Firewall")
        ACCESS_POINT = "access_point", _("Access point")
        PRINTER = "printer", _("Printer")
        NAS = "nas", _("NAS")
        UPS = "ups", _("UPS")
        CAMERA = "camera", _("Camera")
        OTHER = "other", _("Other")

    class Source(models.TextChoices):
        AGENT = "agent", _("Agent")
        MANUAL = "manual", _("Entered by hand")
        IMPORT = "import", _("Imported")
        DISCOVERY = "discovery", _("Discovered")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="devices"
    )
    site = models.ForeignKey(
        Site, verbose_name=_("site"), null=True, blank=True, on_delete=models.SET_NULL
    )
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.DESKTOP)
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.MANUAL
    )
    hostname = models.CharField(_("host name"), max_length=255, blank=True)
    vendor = models.CharField(_("vendor"), max_length=100, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    serial = models.CharField(_("serial number"), max_length=100, blank=True)
    os_name = models.CharField(_("operating system"), max_length=100, blank=True)
    os_version = models.CharField(_("OS version"), max_length=100, blank=True)
    cpu_model = models.CharField(_("CPU"), max_length=200, blank=True)
    memory_bytes = models.BigIntegerField(_("memory"), null=True, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    mac_address = models.CharField(_("MAC address"), max_length=17, blank=True)
    contract = models.ForeignKey(
        Contract,
        verbose_name=_("covered by contract"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="devices",
    )
    warranty_end = models.DateField(_("warranty until"), null=True, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    # The agent's last full inventory (software, disks, NICs, users), as it sent it.
    inventory = models.JSONField(default=dict, blank=True, editable=False)
    inventory_at = models.DateTimeField(_("inventory taken"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    scope_customer_field = "customer_id"
    # The inventory has its own history (InventoryChange); repeating it in the audit adds noise.
    audit_exclude = ("inventory", "inventory_at")

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        indexes = [
            models.Index(fields=["customer", "name"], name="device_customer_name"),
            models.Index(fields=["serial"], name="device_serial"),
        ]

    def __str__(self) -> str:
        return self.name


class InventoryChange(models.Model):
    """One difference between two inventories of a device (RAM changed, software removed)."""

    class Kind(models.TextChoices):
        ADDED = "added", _("Added")
        REMOVED = "removed", _("Removed")
        CHANGED = "changed", _("Changed")

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="inventory_changes")
    at = models.DateTimeField(_("time"))
    item = models.CharField(_("item"), max_length=100)
    kind = models.CharField(_("change"), max_length=8, choices=Kind.choices)
    before = models.CharField(_("before"), max_length=500, blank=True)
    after = models.CharField(_("after"), max_length=500, blank=True)

    scope_customer_field = "device__customer_id"

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("inventory change")
        verbose_name_plural = _("inventory changes")
        indexes = [models.Index(fields=["device", "-at"], name="inventory_change_device")]

    def __str__(self) -> str:
        return f"{self.item} {self.kind}"

    @property
    def customer_id(self) -> int:
        return self.device.customer_id
