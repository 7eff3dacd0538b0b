"""Forms of the contracts pages. As in core, they check the input's shape and `save()` hands it
to a service, whose errors land on the form; working hours and business durations are typed as
text ("09:00-12:00, 13:00-18:00", "1h 30m") and parsed here."""

from __future__ import annotations

import re
from decimal import Decimal
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _

from onestop.contracts import selectors, services
from onestop.contracts.models import BusinessCalendar, CalendarDay, Contract, Priority, SlaPolicy
from onestop.core import selectors as core_selectors
from onestop.core.forms import (
    BLANK,
    ChoiceField,
    CustomerChoiceField,
    SearchForm,
    ServiceForm,
    _initial,
)
from onestop.core.models import TIME_ZONE_CHOICES, Customer, ServiceLine, Site, User

MAX_BUSINESS_MINUTES = 60 * 24 * 366
MAX_ICS_BYTES = 1024 * 1024
# Chinese punctuation is accepted too: these hours are often typed with a Chinese keyboard.
SEGMENT_SEPARATORS = re.compile(r"[,，、;；]")
RANGE_DASH = re.compile(r"\s*[-–—~～－至到]\s*")
CLOCK = re.compile(r"(\d{1,2})(?:[:：](\d{2}))?")
DURATION = re.compile(
    r"(?:(?P<hours>\d+(?:\.\d+)?)\s*(?:h|hrs?|hours?|小时|时))?\s*"
    r"(?:(?P<minutes>\d+)\s*(?:m|mins?|minutes?|分钟|分))?"
)


# Working hours -------------------------------------------------------------------------------


def _clock_minutes(text: str) -> int:
    match = CLOCK.fullmatch(text)
    hour, minute = (int(match[1]), int(match[2] or 0)) if match else (0, 0)
    if match is None or hour > 24 or minute > 59 or (hour == 24 and minute):
        raise ValidationError(
            _("“%(value)s” is not a time of day (00:00 to 24:00)."),
            code="invalid",
            params={"value": text},
        )
    return hour * 60 + minute


def parse_segments(text: str) -> list[list[int]]:
    """Parses "09:00-12:00, 13:00-18:00" into [[540, 720], [780, 1080]]; empty is a day off."""
    segments = []
    for part in filter(None, (p.strip() for p in SEGMENT_SEPARATORS.split(text))):
        bounds = RANGE_DASH.split(part)
        if len(bounds) != 2:
            raise ValidationError(
                _("Write “%(value)s” as start-end, e.g. 09:00-12:00."),
                code="invalid",
                params={"value": part},
            )
        start, end = _clock_minutes(bounds[0]), _clock_minutes(bounds[1])
        if end <= start:
            raise ValidationError(
                _("“%(value)s” ends before it starts."), code="invalid", params={"value": part}
            )
        segments.append((start, end, part))
    segments.sort()
    for (_start, end, first), (start, _end, second) in pairwise(segments):
        if start < end:
            raise ValidationError(
                _("“%(first)s” and “%(second)s” overlap."),
                code="overlap",
                params={"first": first, "second": second},
            )
    return [[start, end] for start, end, _part in segments]


def format_segments(day: list[list[int]]) -> str:
    """The editable text of one day's hours, the inverse of parse_segments."""
    return ", ".join(
        f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}" for start, end in day
    )


class SegmentsField(forms.CharField):
    """One day's working hours typed as "09:00-12:00, 13:00-18:00"."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 200)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return format_segments(value) if isinstance(value, list) else value

    def clean(self, value: Any) -> list[list[int]]:
        return parse_segments(super().clean(value))


# Business durations --------------------------------------------------------------------------


def parse_duration(text: str) -> int:
    """Business minutes from "90", "30m", "4h", "1h 30m" or "1.5h"."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    match = DURATION.fullmatch(text)
    if not text or not match or not (match["hours"] or match["minutes"]):
        raise ValidationError(_("Write a duration such as 30m, 4h or 1h 30m."), code="invalid")
    return round(Decimal(match["hours"] or 0) * 60) + int(match["minutes"] or 0)


def format_duration(minutes: int) -> str:
    """The editable text of a duration, the inverse of parse_duration: "1h 30m"."""
    hours, rest = divmod(minutes, 60)
    parts = [f"{hours}h"] if hours else []
    if rest or not hours:
        parts.append(f"{rest}m")
    return " ".join(parts)


class DurationField(forms.CharField):
    """Business time typed as "30m", "4h" or "1h 30m"; a plain number is minutes."""

    def __init__(self, *, min_minutes: int = 1, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("help_text", _("e.g. 30m, 4h or 1h 30m; a plain number is minutes."))
        self.min_minutes = min_minutes
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return format_duration(value) if isinstance(value, int) else value

    def clean(self, value: Any) -> int | None:
        text = super().clean(value)
        if not text:
            return None
        minutes = parse_duration(text)
        if not self.min_minutes <= minutes <= MAX_BUSINESS_MINUTES:
            raise ValidationError(
                _("Between %(low)s and %(high)s minutes, please."),
                code="out_of_range",
                params={"low": self.min_minutes, "high": MAX_BUSINESS_MINUTES},
            )
        return minutes


def _date_input() -> forms.DateInput:
    # type=date takes ISO dates only, whatever the language's own date format.
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


# Contracts -----------------------------------------------------------------------------------


class SiteMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Site) -> str:
        return f"{obj.customer.name} · {obj.name}"


class ContractForm(ServiceForm):
    field_aliases = {"block_minutes": "block_hours"}

    customer = CustomerChoiceField(label=_("customer"), queryset=Customer.objects.none())
    number = forms.CharField(
        label=_("contract number"),
        max_length=40,
        help_text=_("Unique; stored in capitals. It cannot be changed later."),
    )
    name = forms.CharField(label=_("name"), max_length=200)
    status = forms.ChoiceField(
        label=_("status"), choices=Contract.Status.choices, initial=Contract.Status.DRAFT
    )
    service_lines = forms.MultipleChoiceField(
        label=_("service lines"),
        choices=ServiceLine.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    start_date = forms.DateField(label=_("start"), widget=_date_input())
    end_date = forms.DateField(
        label=_("end"),
        required=False,
        widget=_date_input(),
        help_text=_("Leave empty for a contract without an end date."),
    )
    renewal_reminder_days = forms.IntegerField(
        label=_("renewal reminder (days)"),
        min_value=0,
        max_value=3650,
        initial=60,
        help_text=_("The contract shows as due for renewal this many days before its end."),
    )
    pricing = forms.ChoiceField(
        label=_("pricing model"),
        choices=Contract.Pricing.choices,
        initial=Contract.Pricing.FIXED_MONTHLY,
    )
    unit_price = forms.DecimalField(
        label=_("price (CNY)"), min_value=0, max_digits=12, decimal_places=2, required=False
    )
    quantity = forms.IntegerField(
        label=_("seats / devices"), min_value=0, max_value=1_000_000, required=False
    )
    block_hours = forms.DecimalField(
        label=_("prepaid hours"),
        min_value=Decimal("0.5"),
        max_value=100_000,
        max_digits=9,
        decimal_places=2,
        required=False,
        help_text=_("For a prepaid block of hours: its size."),
    )
    sites = SiteMultipleChoiceField(
        label=_("covered sites"),
        queryset=Site.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    sla_policy = ChoiceField(
        label=_("SLA policy"), queryset=SlaPolicy.objects.none(), required=False
    )
    calendar = ChoiceField(
        label=_("service hours"),
        queryset=BusinessCalendar.objects.none(),
        required=False,
        help_text=_("The business calendar the SLA clocks run on."),
    )
    onsite_response_hours = forms.IntegerField(
        label=_("on-site response (hours)"), min_value=0, max_value=24 * 365, required=False
    )
    is_customer_default = forms.BooleanField(
        label=_("customer's default contract"),
        required=False,
        help_text=Contract._meta.get_field("is_customer_default").help_text,
    )
    notes = forms.CharField(
        label=_("notes"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(
        self,
        *args: Any,
        user: User,
        instance: Contract | None = None,
        customer: Customer | None = None,
        **kwargs: Any,
    ):
        initial = _initial(instance, list(services.CONTRACT_FIELDS))
        if instance is not None:
            initial["sites"] = list(instance.sites.all())
            if instance.block_minutes:
                # Two decimals of an hour bring back the same whole minutes on saving.
                hours = f"{instance.block_minutes / 60:.2f}".rstrip("0").rstrip(".")
                initial["block_hours"] = hours
        elif customer is not None:
            initial.update(customer=customer, service_lines=customer.service_lines)
        kwargs.setdefault("initial", initial)
        super().__init__(*args, user=user, instance=instance, **kwargs)
        if instance is None:
            field = self.fields["customer"]
            field.queryset = core_selectors.customer_choices(user=user)
            # Picking a customer reloads the covered sites with that customer's sites only.
            field.widget.attrs.update(
                {
                    "hx-get": reverse("contract_create"),
                    "hx-trigger": "change",
                    "hx-target": "#contract-sites",
                    "hx-select": "#contract-sites",
                    "hx-swap": "outerHTML",
                }
            )
        else:
            # A contract stays with its customer and keeps its number.
            del self.fields["customer"]
            del self.fields["number"]
            customer = instance.customer
        sites = self.fields["sites"]
        sites.queryset = core_selectors.site_list(
            user=user, customer_id=customer.pk if customer else None
        )
        if customer is not None:
            sites.label_from_instance = lambda site: site.name
        else:
            sites.help_text = _("Choose the customer first to see only its sites.")
        self.fields["sla_policy"].queryset = selectors.sla_policy_list(user=user).prefetch_related(
            None
        )
        self.fields["calendar"].queryset = selectors.calendar_list(user=user).prefetch_related(None)

    def perform(self) -> Contract:
        data = dict(self.cleaned_data)
        hours = data.pop("block_hours")
        data["block_minutes"] = round(hours * 60) if hours else None
        if self.instance is None:
            return services.contract_create(actor=self.user, **data)
        return services.contract_update(actor=self.user, contract=self.instance, **data)


class ContractFilterForm(SearchForm):
    search_hint = _("Number or name")
    customer = CustomerChoiceField(
        label=_("customer"), queryset=Customer.objects.none(), required=False
    )
    status = forms.ChoiceField(
        label=_("status"), choices=BLANK + Contract.Status.choices, required=False
    )
    service_line = forms.ChoiceField(
        label=_("service line"), choices=BLANK + ServiceLine.choices, required=False
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)


# SLA policies --------------------------------------------------------------------------------

TARGET_ERROR = re.compile(r"targets\.(\d+)(?:\.(\w+))?")
CHECK_TARGETS = _("Check the targets below.")


class SlaTargetForm(forms.Form):
    """One priority's row of targets; a row left empty is left out of the policy."""

    priority = forms.ChoiceField(choices=Priority.choices, widget=forms.HiddenInput)
    # The form explains the format once, above the rows.
    first_response_minutes = DurationField(label=_("first response"), required=False, help_text="")
    resolution_minutes = DurationField(label=_("resolution"), required=False, help_text="")
    next_update_minutes = DurationField(label=_("next update"), required=False, help_text="")

    TIMES = ("first_response_minutes", "resolution_minutes", "next_update_minutes")

    def priority_label(self) -> str:
        return dict(Priority.choices).get(self["priority"].value(), "")

    def is_blank(self) -> bool:
        return not any(self.cleaned_data.get(name) for name in self.TIMES)


TargetFormSet = forms.formset_factory(
    SlaTargetForm, extra=0, max_num=len(Priority.values), validate_max=True
)


class SlaPolicyForm(ServiceForm):
    name = forms.CharField(label=_("name"), max_length=100)
    description = forms.CharField(
        label=_("description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    is_default = forms.BooleanField(
        label=_("global default"),
        required=False,
        help_text=_("For tickets whose contract and customer name no SLA policy."),
    )

    def __init__(self, *args: Any, user: User, instance: SlaPolicy | None = None, **kwargs: Any):
        kwargs.setdefault("initial", _initial(instance, ["name", "description", "is_default"]))
        super().__init__(*args, user=user, instance=instance, **kwargs)
        stored = {t.priority: t for t in instance.targets.all()} if instance is not None else {}
        rows = []
        for code in Priority.values:
            target = stored.get(code)
            row = {"priority": code}
            if target is not None:
                row.update({name: getattr(target, name) for name in SlaTargetForm.TIMES})
            rows.append(row)
        self.targets = TargetFormSet(
            self.data if self.is_bound else None, prefix="targets", initial=rows
        )
        self.target_rows: list[int] = []

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.targets.is_valid():
            raise ValidationError(CHECK_TARGETS)
        rows = [(n, row) for n, row in enumerate(self.targets.forms) if not row.is_blank()]
        # Which formset row each target given to the service came from, for its errors.
        self.target_rows = [n for n, _row in rows]
        data["targets"] = [
            {"priority": row.cleaned_data["priority"]}
            | {name: row.cleaned_data[name] for name in SlaTargetForm.TIMES}
            for _n, row in rows
        ]
        return data

    def add_service_errors(self, exc: ValidationError) -> None:
        if not hasattr(exc, "error_dict"):
            super().add_service_errors(exc)
            return
        for name, errors in exc.error_dict.items():
            match = TARGET_ERROR.fullmatch(name)
            if match is None:
                super().add_service_errors(ValidationError({name: errors}))
                continue
            row = self.targets.forms[self.target_rows[int(match[1])]]
            row.add_error(match[2] if match[2] in row.fields else None, errors)
            self.add_error(None, CHECK_TARGETS)

    def perform(self) -> SlaPolicy:
        if self.instance is None:
            return services.sla_policy_create(actor=self.user, **self.cleaned_data)
        return services.sla_policy_update(
            actor=self.user, policy=self.instance, **self.cleaned_data
        )


# Business calendars --------------------------------------------------------------------------

WEEKDAY_FIELDS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class CalendarForm(ServiceForm):
    """A calendar from a preset, or custom weekly hours typed per weekday."""

    name = forms.CharField(label=_("name"), max_length=100)
    preset = forms.ChoiceField(
        label=_("preset"),
        choices=BusinessCalendar.Preset.choices,
        initial=BusinessCalendar.Preset.FIVE_BY_EIGHT,
        help_text=_("For Custom, enter the weekly hours below."),
    )
    time_zone = forms.ChoiceField(
        label=_("time zone"), choices=TIME_ZONE_CHOICES, initial="Asia/Shanghai"
    )
    uses_holidays = forms.BooleanField(
        label=_("holidays apply"),
        required=False,
        initial=True,
        help_text=BusinessCalendar._meta.get_field("uses_holidays").help_text,
    )
    is_default = forms.BooleanField(
        label=_("default calendar"),
        required=False,
        help_text=_("For contracts that name no service hours."),
    )

    def __init__(
        self, *args: Any, user: User, instance: BusinessCalendar | None = None, **kwargs: Any
    ):
        names = ["name", "time_zone", "uses_holidays", "is_default"]
        initial = _initial(instance, names)
        if instance is not None:
            initial.update(zip(WEEKDAY_FIELDS, instance.weekly_hours, strict=True))
        kwargs.setdefault("initial", initial)
        super().__init__(*args, user=user, instance=instance, **kwargs)
        for n, name in enumerate(WEEKDAY_FIELDS):
            self.fields[name] = SegmentsField(label=WEEKDAYS[n])
        if instance is not None:
            # The stored hours are edited directly; changing them makes the calendar custom.
            del self.fields["preset"]

    def general_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in WEEKDAY_FIELDS]

    def weekday_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in WEEKDAY_FIELDS]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        weekly = [data.get(name) for name in WEEKDAY_FIELDS]
        for name in WEEKDAY_FIELDS:
            data.pop(name, None)
        if any(day is None for day in weekly):
            return data  # a weekday's own error is shown already
        preset = data.get("preset", BusinessCalendar.Preset.CUSTOM)
        if preset == BusinessCalendar.Preset.CUSTOM:
            data["weekly_hours"] = weekly
        elif any(weekly):
            self.add_error(
                "preset",
                _("You entered weekly hours: choose Custom to use them, or clear them."),
            )
        return data

    def perform(self) -> BusinessCalendar:
        if self.instance is None:
            return services.calendar_create(actor=self.user, **self.cleaned_data)
        return services.calendar_update(
            actor=self.user, calendar=self.instance, **self.cleaned_data
        )


class ChineseImportForm(ServiceForm):
    field_aliases = {"years": "year"}

    year = forms.TypedChoiceField(label=_("year"), coerce=int, choices=())

    def __init__(self, *args: Any, user: User, instance: BusinessCalendar, **kwargs: Any):
        super().__init__(*args, user=user, instance=instance, **kwargs)
        known = services.chinese_calendar_years()
        self.fields["year"].choices = [(year, year) for year in reversed(known)]
        # Offered first: this year or the next, whichever still lacks its days.
        this_year = timezone.localdate().year
        imported = {row.year for row in instance.years.all()}
        likely = [year for year in (this_year, this_year + 1) if year in known]
        self.fields["year"].initial = next(
            (year for year in likely if year not in imported), likely[0] if likely else None
        )

    def perform(self) -> dict[int, dict[str, int]]:
        return services.calendar_import_chinese(
            actor=self.user, calendar=self.instance, years=[self.cleaned_data["year"]]
        )


def _years(text: str) -> list[int]:
    years = []
    for part in filter(None, re.split(r"[\s,，、]+", text)):
        if not part.isdigit() or not 1900 <= int(part) <= 2100:
            raise ValidationError(
                _("“%(value)s” is not a year."), code="invalid", params={"value": part}
            )
        years.append(int(part))
    return years


class IcalImportForm(ServiceForm):
    field_aliases = {"ics": "file"}

    file = forms.FileField(label=_("iCal file (.ics)"))
    kind = forms.ChoiceField(
        label=_("import the events as"),
        choices=CalendarDay.Kind.choices,
        initial=CalendarDay.Kind.HOLIDAY,
    )
    mark_years = forms.CharField(
        label=_("years the file covers completely"),
        required=False,
        max_length=100,
        help_text=_("e.g. 2026, 2027. Due times in these years are then no longer provisional."),
    )

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_ICS_BYTES:
            raise ValidationError(_("The file is larger than 1 MB."), code="too_large")
        return upload.read()

    def clean_mark_years(self) -> list[int]:
        return _years(self.cleaned_data["mark_years"])

    def perform(self) -> int:
        data = self.cleaned_data
        return services.calendar_import_ical(
            actor=self.user,
            calendar=self.instance,
            ics=data["file"],
            kind=data["kind"],
            mark_years=data["mark_years"],
        )


class CalendarDayForm(ServiceForm):
    date = forms.DateField(label=_("date"), widget=_date_input())
    kind = forms.ChoiceField(
        label=_("kind"), choices=CalendarDay.Kind.choices, initial=CalendarDay.Kind.HOLIDAY
    )
    name = forms.CharField(label=_("name"), max_length=100, required=False)
    hours = SegmentsField(
        label=_("working hours"),
        help_text=_(
            "For a working day only, e.g. 09:00-12:00, 13:00-18:00; leave empty for a normal "
            "weekday's hours."
        ),
    )

    def perform(self) -> CalendarDay:
        return services.calendar_day_set(
            actor=self.user, calendar=self.instance, **self.cleaned_data
        )


class DueForm(forms.Form):
    """The due time calculator: a start on the calendar's clock plus business time."""

    start = forms.DateTimeField(
        label=_("start time"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    minutes = DurationField(label=_("business time"), min_minutes=0)

    def __init__(self, *args: Any, calendar: BusinessCalendar, **kwargs: Any) -> None:
        self.zone = ZoneInfo(calendar.time_zone)
        kwargs.setdefault(
            "initial",
            {"start": timezone.localtime(timezone=self.zone).replace(tzinfo=None), "minutes": 240},
        )
        super().__init__(*args, **kwargs)
        self.fields["start"].help_text = _("On the calendar's clock (%(zone)s).") % {
            "zone": calendar.time_zone
        }

    def full_clean(self) -> None:
        # The start is read on the calendar's clock, whatever the user's own time zone.
        with timezone.override(self.zone):
            super().full_clean()
