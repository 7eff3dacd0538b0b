"""Forms of the device pages: filters, devices entered by hand, and enrolment tokens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from onestop.assets import services as asset_services
from onestop.assets.models import Device
from onestop.core import selectors as core_selectors
from onestop.core.forms import BLANK, ChoiceField, CustomerChoiceField, SearchForm, ServiceForm
from onestop.core.models import Customer, Site, User
from onestop.monitoring import services
from onestop.monitoring.models import EnrollmentToken


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
