"""Forms of the device pages (filters, devices entered by hand, enrolment tokens) and of the
checks pages (checks, templates, maintenance windows, SNMP credentials, discovery)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from onestop.assets import selectors as asset_selectors
from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.core import selectors as core_selectors
from onestop.core.forms import BLANK, ChoiceField, CustomerChoiceField, SearchForm, ServiceForm
from onestop.core.models import TIME_ZONE_CHOICES, Customer, Site, User
from onestop.monitoring import selectors, services
from onestop.monitoring.models import (
    DEFINITION_FIELDS,
    Check,
    CheckDefinition,
    CheckState,
    CheckTemplate,
    DiscoveryJob,
    EnrollmentToken,
    MaintenanceWindow,
    SnmpCredential,
)


class SiteChoiceField(ChoiceField):
    def label_from_instance(self, obj: Site) -> str:
        return f"{obj.customer.name} · {obj.name}"


class DeviceFilterForm(SearchForm):
    search_hint = _("Name, host name, serial number or IP address")
    customer = CustomerChoiceField(
        label=_("customer"), queryset=Customer.objects.none(), required=False
    )
    site = SiteChoiceField(label=_("site"), queryset=Site.objects.none(), required=False)
    kind = forms.ChoiceField(label=_("kind"), choices=BLANK + Device.Kind.choices, required=False)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
        self.fields["site"].queryset = core_selectors.site_list(user=user).select_related(
            "customer"
        )


DEVICE_FORM_FIELDS = (
    "name",
    "kind",
    "hostname",
    "vendor",
    "model",
    "serial",
    "ip_address",
    "warranty_end",
    "notes",
)


class DeviceForm(ServiceForm):
    """A device entered by hand (agents fill in theirs)."""

    customer = CustomerChoiceField(label=_("customer"), queryset=Customer.objects.none())
    site = SiteChoiceField(label=_("site"), queryset=Site.objects.none(), required=False)
    name = forms.CharField(label=_("name"), max_length=200)
    kind = forms.ChoiceField(label=_("kind"), choices=Device.Kind.choices)
    hostname = forms.CharField(label=_("host name"), max_length=255, required=False)
    vendor = forms.CharField(label=_("vendor"), max_length=100, required=False)
    model = forms.CharField(label=_("model"), max_length=100, required=False)
    serial = forms.CharField(label=_("serial number"), max_length=100, required=False)
    ip_address = forms.GenericIPAddressField(label=_("IP address"), required=False)
    warranty_end = forms.DateField(
        label=_("warranty until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    notes = forms.CharField(
        label=_("notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, user: User, instance: Device | None = None, **kwargs: Any):
        if instance is not None:
            initial = {name: getattr(instance, name) for name in DEVICE_FORM_FIELDS}
            initial |= {"customer": instance.customer_id, "site": instance.site_id}
            kwargs.setdefault("initial", initial)
        super().__init__(*args, user=user, instance=instance, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
        self.fields["site"].queryset = core_selectors.site_list(user=user).select_related(
            "customer"
        )
        if instance is not None:
            self.fields["customer"].disabled = True

    def perform(self) -> Device:
        data = dict(self.cleaned_data)
        data["ip_address"] = data["ip_address"] or None
        customer = data.pop("customer")
        if self.instance is None:
            return asset_services.device_create(actor=self.user, customer=customer, **data)
        return asset_services.device_update(actor=self.user, device=self.instance, **data)


class EnrollmentTokenForm(ServiceForm):
    """A token for the chosen site; the page then shows the exact enrol command."""

    site = SiteChoiceField(label=_("site"), queryset=Site.objects.none())
    name = forms.CharField(label=_("name"), max_length=100, required=False)
    days = forms.IntegerField(label=_("valid for (days)"), min_value=1, max_value=90, initial=7)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self.fields["site"].queryset = core_selectors.site_list(user=user).select_related(
            "customer"
        )

    def perform(self) -> tuple[EnrollmentToken, str]:
        return services.enrollment_token_create(actor=self.user, **self.cleaned_data)


class DeviceImportForm(ServiceForm):
    """A device file for one customer; saving it reads the file and runs the import as a dry
    run, so the page can show what it would do before anything is stored."""

    customer = CustomerChoiceField(label=_("customer"), queryset=Customer.objects.none())
    file = forms.FileField(
        label=_("file"),
        help_text=_("A .csv or .xlsx file with a header row, at most 5 MB and 5,000 devices."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)

    def perform(
        self,
    ) -> tuple[asset_services.DeviceImportTable, asset_services.DeviceImportResult]:
        upload = self.cleaned_data["file"]
        table = asset_services.device_import_read(
            content=upload.read(asset_services.IMPORT_MAX_BYTES + 1), filename=upload.name or ""
        )
        result = asset_services.devices_import(
            actor=self.user, customer=self.cleaned_data["customer"], table=table, dry_run=True
        )
        return table, result


# Checks and check templates ----------------------------------------------------------------------


def _probe_help() -> str:
    """Each probe's parameters (required ones starred), for the help text of `params`."""
    parts = []
    for probe, label in CheckDefinition.Probe.choices:
        required = services.PROBE_REQUIRED.get(probe, ())
        names = [f"{name}*" if name in required else name for name in services.PROBE_PARAMS[probe]]
        parts.append(f"{label} ({probe}): {', '.join(names)}")
    return "; ".join(parts)


class JsonObjectField(forms.JSONField):
    """JSON typed in a text area; nothing (not "null" or "{}") stands for no entries."""

    widget = forms.Textarea

    def prepare_value(self, value: Any) -> Any:
        if value is None or value == {}:
            return ""
        return super().prepare_value(value)


class CredentialChoiceField(ChoiceField):
    def label_from_instance(self, obj: SnmpCredential) -> str:
        if obj.customer_id is None:
            return str(obj)
        return f"{obj} ({obj.customer.name})"


class CheckDefinitionForm(ServiceForm):
    """The fields a device's check and a template share (models.DEFINITION_FIELDS)."""

    name = forms.CharField(label=_("name"), max_length=100)
    kind = forms.ChoiceField(
        label=_("kind"),
        choices=CheckDefinition.Kind.choices,
        initial=CheckDefinition.Kind.AGENT,
        help_text=_(
            "An agent metric is judged from what the device's agent reports; a poller probe is "
            "run from the server against the device."
        ),
    )
    metric = forms.CharField(
        label=_("metric"),
        max_length=100,
        required=False,
    )
    labels = JsonObjectField(
        label=_("labels"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_('Picks one series of the metric, e.g. {"mount": "/"}. Empty for all.'),
    )
    probe = forms.ChoiceField(
        label=_("probe"),
        choices=BLANK + CheckDefinition.Probe.choices,
        required=False,
        help_text=_("Poller probes only."),
    )
    params = JsonObjectField(
        label=_("probe parameters"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    snmp_credential = CredentialChoiceField(
        label=_("SNMP credentials"),
        queryset=SnmpCredential.objects.none(),
        required=False,
        help_text=_("SNMP probes only."),
    )
    interval = forms.IntegerField(label=_("interval (s)"), min_value=1, initial=60)
    timeout = forms.IntegerField(label=_("timeout (s)"), min_value=1, initial=5)
    retries = forms.IntegerField(label=_("retries"), min_value=0, initial=1)
    mode = forms.ChoiceField(
        label=_("evaluation"),
        choices=CheckDefinition.Mode.choices,
        initial=CheckDefinition.Mode.THRESHOLD,
    )
    direction = forms.ChoiceField(
        label=_("direction"),
        choices=CheckDefinition.Direction.choices,
        initial=CheckDefinition.Direction.HIGHER_IS_WORSE,
    )
    warning = forms.FloatField(label=_("warning level"), required=False)
    critical = forms.FloatField(label=_("critical level"), required=False)
    recovery = forms.FloatField(
        label=_("recovery level"),
        required=False,
        help_text=_("Where a problem counts as over; empty: back past the warning level."),
    )
    hysteresis = forms.FloatField(label=_("hysteresis"), required=False, initial=0)
    consecutive = forms.IntegerField(
        label=_("consecutive results"),
        min_value=1,
        initial=1,
        help_text=_("How many results in a row it takes to change the state."),
    )
    enabled = forms.BooleanField(label=_("enabled"), required=False, initial=True)

    def __init__(self, *args: Any, user: User, instance: Any = None, **kwargs: Any) -> None:
        if instance is not None:
            kwargs.setdefault("initial", self.initial_from(instance))
        super().__init__(*args, user=user, instance=instance, **kwargs)
        self.fields["params"].help_text = _(
            'Names with values (JSON), e.g. {"port": 443}; * = required. Without a host the '
            "device's address is probed. %(probes)s"
        ) % {"probes": _probe_help()}
        self.fields["metric"].help_text = _(
            "For an agent metric one of: %(names)s. For a probe, optionally the reading to judge."
        ) % {"names": ", ".join(sorted(services.AGENT_METRICS))}
        self.fields["snmp_credential"].queryset = selectors.snmp_credential_list(user=user)

    def initial_from(self, instance: Any) -> dict[str, Any]:
        return {name: getattr(instance, name) for name in DEFINITION_FIELDS}

    def definition(self) -> dict[str, Any]:
        data = {name: self.cleaned_data[name] for name in DEFINITION_FIELDS}
        data["labels"] = data["labels"] or {}
        data["params"] = data["params"] or {}
        data["hysteresis"] = data["hysteresis"] or 0.0
        return data


class CheckForm(CheckDefinitionForm):
    """A device's check. On a template's check, fields set apart from the template become the
    device's own (overridden); their help text says what the template has."""

    def __init__(self, *args: Any, user: User, device: Device, **kwargs: Any) -> None:
        self.device = device
        super().__init__(*args, user=user, **kwargs)
        self.fields["snmp_credential"].queryset = self.fields["snmp_credential"].queryset.filter(
            Q(customer__isnull=True) | Q(customer_id=device.customer_id)
        )
        check = self.instance
        if check is not None and check.template_id is not None:
            for name in check.overridden_fields:
                if name in self.fields:
                    field = self.fields[name]
                    value = getattr(check.template, name)
                    shown = "—" if value in (None, "", {}) else str(value)
                    field.help_text = _("Set on this device; the template has: %(value)s") % {
                        "value": shown
                    }
                    field.widget.attrs["class"] = "overridden"

    def perform(self) -> Check:
        data = self.definition()
        if self.instance is None:
            return services.check_create(actor=self.user, device=self.device, **data)
        return services.check_update(actor=self.user, check=self.instance, **data)


class CheckTemplateForm(CheckDefinitionForm):
    """A template (policy): its check goes to every device in its scope."""

    customer = CustomerChoiceField(
        label=_("customer"),
        queryset=Customer.objects.none(),
        required=False,
        help_text=_("Empty: every customer's devices."),
    )
    site = SiteChoiceField(
        label=_("site"),
        queryset=Site.objects.none(),
        required=False,
        help_text=_("Empty: every site of the customer."),
    )
    device_kind = forms.ChoiceField(
        label=_("device kind"),
        choices=BLANK + Device.Kind.choices,
        required=False,
        help_text=_("Empty: every kind of device."),
    )
    description = forms.CharField(
        label=_("description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    field_order = ["name", "customer", "site", "device_kind", "description"]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
        self.fields["site"].queryset = core_selectors.site_list(user=user).select_related(
            "customer"
        )
        self.order_fields(self.field_order)

    def initial_from(self, instance: Any) -> dict[str, Any]:
        initial = super().initial_from(instance)
        initial |= {"customer": instance.customer_id, "site": instance.site_id}
        initial |= {"device_kind": instance.device_kind, "description": instance.description}
        return initial

    def perform(self) -> CheckTemplate:
        data = self.definition()
        data |= {name: self.cleaned_data[name] for name in services.TEMPLATE_SCOPE_FIELDS}
        if self.instance is None:
            return services.check_template_create(actor=self.user, **data)
        return services.check_template_update(actor=self.user, template=self.instance, **data)


class CheckTemplateFilterForm(SearchForm):
    customer = CustomerChoiceField(
        label=_("customer"), queryset=Customer.objects.none(), required=False
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)


class ProblemFilterForm(SearchForm):
    search_hint = _("Device or check")
    customer = CustomerChoiceField(
        label=_("customer"), queryset=Customer.objects.none(), required=False
    )
    state = forms.ChoiceField(
        label=_("state"),
        choices=BLANK + [c for c in CheckState.choices if c[0] != CheckState.OK],
        required=False,
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)


# Maintenance windows -----------------------------------------------------------------------------

LOCAL_INPUT = "%Y-%m-%dT%H:%M"


class DeviceChoiceField(ChoiceField):
    def label_from_instance(self, obj: Device) -> str:
        return f"{obj.customer.name} · {obj.name}"


def _wall_clock(value: dt.datetime | None, zone: str) -> dt.datetime | None:
    """The time as typed (read by the form in the viewer's zone) placed in the window's zone."""
    if value is None:
        return None
    return timezone.localtime(value).replace(tzinfo=None).replace(tzinfo=ZoneInfo(zone))


class MaintenanceWindowForm(ServiceForm):
    customer = CustomerChoiceField(label=_("customer"), queryset=Customer.objects.none())
    site = SiteChoiceField(
        label=_("site"),
        queryset=Site.objects.none(),
        required=False,
        help_text=_("Empty: all the customer's sites."),
    )
    device = DeviceChoiceField(
        label=_("device"),
        queryset=Device.objects.none(),
        required=False,
        help_text=_("Empty: all devices (of the site, if one is chosen)."),
    )
    name = forms.CharField(label=_("name"), max_length=200)
    reason = forms.CharField(
        label=_("reason"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    time_zone = forms.ChoiceField(
        label=_("time zone"),
        choices=TIME_ZONE_CHOICES,
        help_text=_("The start and end are read in this time zone, and so are the repeats."),
    )
    starts_at = forms.DateTimeField(
        label=_("starts"),
        input_formats=[LOCAL_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
    )
    ends_at = forms.DateTimeField(
        label=_("ends"),
        required=False,
        input_formats=[LOCAL_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_INPUT),
        help_text=_("For a one-off window. Leave empty for a repeating one."),
    )
    rrule = forms.CharField(
        label=_("repeats (RRULE)"),
        max_length=500,
        required=False,
        help_text=_(
            "For a repeating window, e.g. FREQ=WEEKLY;BYDAY=SU or FREQ=MONTHLY;BYMONTHDAY=1; "
            "the first occurrence is at the start."
        ),
    )
    duration_minutes = forms.IntegerField(
        label=_("duration (minutes)"),
        min_value=1,
        required=False,
        help_text=_("How long each repeat lasts."),
    )

    def __init__(
        self, *args: Any, user: User, instance: MaintenanceWindow | None = None, **kw: Any
    ):
        if instance is not None:
            zone = ZoneInfo(instance.time_zone)
            initial = {name: getattr(instance, name) for name in services.WINDOW_FIELDS}
            initial |= {
                "customer": instance.customer_id,
                "site": instance.site_id,
                "device": instance.device_id,
                "starts_at": instance.starts_at.astimezone(zone).strftime(LOCAL_INPUT),
                "ends_at": instance.ends_at.astimezone(zone).strftime(LOCAL_INPUT)
                if instance.ends_at
                else None,
            }
            kw.setdefault("initial", initial)
        super().__init__(*args, user=user, instance=instance, **kw)
        self.fields["time_zone"].initial = user.time_zone or "Asia/Shanghai"
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
        self.fields["site"].queryset = core_selectors.site_list(user=user).select_related(
            "customer"
        )
        self.fields["device"].queryset = asset_selectors.device_list(user=user).order_by(
            "customer__name", "name", "id"
        )
        if instance is not None:
            self.fields["customer"].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        zone = data.get("time_zone")
        if zone:
            for name in ("starts_at", "ends_at"):
                if data.get(name) is not None:
                    data[name] = _wall_clock(data[name], zone)
        return data

    def perform(self) -> MaintenanceWindow:
        data = dict(self.cleaned_data)
        customer = data.pop("customer")
        if self.instance is None:
            return services.maintenance_window_create(actor=self.user, customer=customer, **data)
        return services.maintenance_window_update(actor=self.user, window=self.instance, **data)


class MaintenanceWindowFilterForm(SearchForm):
    customer = CustomerChoiceField(
        label=_("customer"), queryset=Customer.objects.none(), required=False
    )
    active = forms.BooleanField(label=_("active now"), required=False)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)


# SNMP credentials --------------------------------------------------------------------------------


class SecretInput(forms.PasswordInput):
    """Write-only: never rendered back, not even after an error."""

    def __init__(self) -> None:
        super().__init__(render_value=False, attrs={"autocomplete": "new-password"})


class SnmpCredentialForm(ServiceForm):
    customer = CustomerChoiceField(
        label=_("customer"),
        queryset=Customer.objects.none(),
        required=False,
        help_text=_("Leave empty to use it for any customer's devices."),
    )
    name = forms.CharField(label=_("name"), max_length=100)
    version = forms.ChoiceField(
        label=_("version"),
        choices=SnmpCredential.Version.choices,
        initial=SnmpCredential.Version.V2C,
    )
    community = forms.CharField(
        label=_("community"), required=False, max_length=200, widget=SecretInput()
    )
    user = forms.CharField(label=_("v3 user"), required=False, max_length=100)
    auth_protocol = forms.ChoiceField(
        label=_("v3 authentication"), choices=SnmpCredential.Auth.choices, required=False
    )
    auth_key = forms.CharField(
        label=_("v3 authentication key"), required=False, max_length=200, widget=SecretInput()
    )
    priv_protocol = forms.ChoiceField(
        label=_("v3 privacy"), choices=SnmpCredential.Privacy.choices, required=False
    )
    priv_key = forms.CharField(
        label=_("v3 privacy key"), required=False, max_length=200, widget=SecretInput()
    )
    context = forms.CharField(label=_("v3 context"), required=False, max_length=100)
    trap_engine_ids = forms.CharField(
        label=_("v3 trap senders' engine IDs"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=_(
            "For SNMPv3 traps: the engine ID (hex) of each device that sends traps with these "
            "credentials, one per line, e.g. 80000009030000c1b1d0e001."
        ),
    )

    def __init__(self, *args: Any, user: User, instance: SnmpCredential | None = None, **kw: Any):
        if instance is not None:
            initial = {
                name: getattr(instance, name)
                for name in services.CREDENTIAL_FIELDS
                if name != "customer"
            }
            kw.setdefault("initial", initial | {"customer": instance.customer_id})
        super().__init__(*args, user=user, instance=instance, **kw)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
        if instance is not None:
            keep = _("Stored and never shown; leave empty to keep it.")
            for name in services.CREDENTIAL_SECRETS:
                self.fields[name].help_text = keep

    def perform(self) -> SnmpCredential:
        data = dict(self.cleaned_data)
        if self.instance is None:
            return services.snmp_credential_create(actor=self.user, **data)
        return services.snmp_credential_update(actor=self.user, credential=self.instance, **data)


# SNMP discovery ----------------------------------------------------------------------------------


class DiscoveryJobForm(ServiceForm):
    """A discovery of one customer's network; the service checks the network's size and that
    the site and the credentials suit the customer."""

    customer = CustomerChoiceField(label=_("customer"), queryset=Customer.objects.none())
    site = SiteChoiceField(
        label=_("site"),
        queryset=Site.objects.none(),
        required=False,
        help_text=_("The site the devices found are placed at (optional)."),
    )
    network = forms.CharField(
        label=_("network"),
        max_length=50,
        help_text=_("In CIDR notation, at most 4,096 addresses, e.g. 10.1.20.0/24."),
        widget=forms.TextInput(attrs={"placeholder": "10.1.20.0/24", "inputmode": "decimal"}),
    )
    snmp_credential = CredentialChoiceField(
        label=_("SNMP credentials"),
        queryset=SnmpCredential.objects.none(),
        help_text=_("The customer's own credentials or those for every customer."),
    )
    port = forms.IntegerField(label=_("SNMP port"), min_value=1, max_value=65535, initial=161)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
        self.fields["site"].queryset = core_selectors.site_list(user=user).select_related(
            "customer"
        )
        self.fields["snmp_credential"].queryset = selectors.snmp_credential_list(
            user=user
        ).order_by("customer__name", "name", "id")

    def perform(self) -> DiscoveryJob:
        return services.discovery_job_create(actor=self.user, **self.cleaned_data)


class DiscoveryJobFilterForm(SearchForm):
    search_hint = _("Network")
    customer = CustomerChoiceField(
        label=_("customer"), queryset=Customer.objects.none(), required=False
    )
    status = forms.ChoiceField(
        label=_("status"), choices=BLANK + DiscoveryJob.Status.choices, required=False
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
