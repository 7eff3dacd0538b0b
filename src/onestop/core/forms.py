"""Forms of the web UI. They check the input's shape; `save()` hands it to a service, whose field
errors land on the form, so a rejected change shows where it went wrong and changes nothing."""

from __future__ import annotations

import datetime
import re
from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from onestop.core import selectors, services
from onestop.core.models import (
    TIME_ZONE_CHOICES,
    AuditEvent,
    Contact,
    Customer,
    Industry,
    Role,
    ServiceLine,
    Site,
    Team,
    User,
)

BLANK = [("", "—")]
LANGUAGE_CHOICES = [("", _("Browser default")), *User._meta.get_field("language").choices]
AUDITED_TYPES = [
    (model._meta.label_lower, model._meta.verbose_name)
    for model in (Customer, Site, Contact, Team, User)
]


class ChoiceField(forms.ModelChoiceField):
    """A single choice among objects, with the same "—" for none as the plain choice fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("empty_label", "—")
        super().__init__(*args, **kwargs)


class CustomerChoiceField(ChoiceField):
    def label_from_instance(self, obj: Customer) -> str:
        return f"{obj.name} ({obj.short_code})"


class CustomerMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Customer) -> str:
        return f"{obj.name} ({obj.short_code})"


class PersonChoiceField(ChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj} ({obj.username})" if obj.display_name else obj.username


class PeopleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj} ({obj.username})" if obj.display_name else obj.username


class SiteChoiceField(ChoiceField):
    def label_from_instance(self, obj: Site) -> str:
        return f"{obj.customer.name} · {obj.name}"


class ServiceForm(forms.Form):
    """A form whose `save()` calls a service and turns its ValidationError into form errors.

    Subclasses define `perform()`, which calls the service and returns its result.
    """

    # Service field name → form field name, where the two differ.
    field_aliases: dict[str, str] = {}

    def __init__(self, *args: Any, user: User, instance: Any = None, **kwargs: Any) -> None:
        self.user = user
        self.instance = instance
        super().__init__(*args, **kwargs)

    def save(self) -> Any:
        """The service's result, or None after adding its errors to the form."""
        try:
            return self.perform()
        except ValidationError as exc:
            self.add_service_errors(exc)
            return None

    def add_service_errors(self, exc: ValidationError) -> None:
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for name, errors in exc.error_dict.items():
            field = self.field_aliases.get(name, name)
            if field == NON_FIELD_ERRORS or field not in self.fields:
                field = None
            self.add_error(field, errors)


def _initial(instance: Any, names: list[str]) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in names} if instance is not None else {}


class SearchForm(forms.Form):
    """The search box of a list page; subclasses add their filters."""

    search_hint = _("Name")
    q = forms.CharField(label=_("Search"), required=False, widget=forms.SearchInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["q"].widget.attrs["placeholder"] = self.search_hint


# Customers -----------------------------------------------------------------------------------


class CustomerForm(ServiceForm):
    name = forms.CharField(label=_("name"), max_length=200)
    short_code = forms.CharField(
        label=_("short code"),
        max_length=16,
        help_text=Customer._meta.get_field("short_code").help_text,
    )
    industry = forms.ChoiceField(
        label=_("industry"), choices=Industry.choices, initial=Industry.OTHER
    )
    status = forms.ChoiceField(
        label=_("status"), choices=Customer.Status.choices, initial=Customer.Status.ACTIVE
    )
    service_lines = forms.MultipleChoiceField(
        label=_("service lines"),
        choices=ServiceLine.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    parent = CustomerChoiceField(
        label=_("group company"), queryset=Customer.objects.none(), required=False
    )
    phone = forms.CharField(label=_("phone"), max_length=40, required=False, widget=forms.TelInput)
    website = forms.URLField(
        label=_("website"), max_length=200, required=False, assume_scheme="https"
    )
    mail_domains = forms.CharField(
        label=_("mail domains"),
        max_length=2000,
        required=False,
        help_text=Customer._meta.get_field("mail_domains").help_text,
    )
    notes = forms.CharField(
        label=_("notes"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(self, *args: Any, user: User, instance: Customer | None = None, **kwargs: Any):
        initial = _initial(instance, list(services.CUSTOMER_FIELDS))
        if instance is not None:
            initial["mail_domains"] = " ".join(instance.mail_domains)
        kwargs.setdefault("initial", initial)
        super().__init__(*args, user=user, instance=instance, **kwargs)
        parents = selectors.customer_choices(user=user)
        if instance is not None:
            parents = parents.exclude(pk=instance.pk)
        self.fields["parent"].queryset = parents

    def clean_mail_domains(self) -> list[str]:
        # Typed as one line: separated by spaces, commas or semicolons (also full-width ones).
        parts = re.split(r"[\s,;，；、]+", self.cleaned_data["mail_domains"])
        return [part for part in parts if part]

    def perform(self) -> Customer:
        if self.instance is None:
            return services.customer_create(actor=self.user, **self.cleaned_data)
        return services.customer_update(
            actor=self.user, customer=self.instance, **self.cleaned_data
        )


class CustomerFilterForm(SearchForm):
    search_hint = _("Name, short code or pinyin initials")
    status = forms.ChoiceField(
        label=_("status"), choices=BLANK + Customer.Status.choices, required=False
    )
    industry = forms.ChoiceField(
        label=_("industry"), choices=BLANK + Industry.choices, required=False
    )
    service_line = forms.ChoiceField(
        label=_("service line"), choices=BLANK + ServiceLine.choices, required=False
    )


# Sites ---------------------------------------------------------------------------------------


class SiteForm(ServiceForm):
    customer = CustomerChoiceField(label=_("customer"), queryset=Customer.objects.none())
    name = forms.CharField(label=_("name"), max_length=200)
    address = forms.CharField(label=_("address"), max_length=400, required=False)
    city = forms.CharField(label=_("city"), max_length=100, required=False)
    time_zone = forms.ChoiceField(
        label=_("time zone"), choices=TIME_ZONE_CHOICES, initial="Asia/Shanghai"
    )
    notes = forms.CharField(
        label=_("notes"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(self, *args: Any, user: User, instance: Site | None = None, **kwargs: Any):
        kwargs.setdefault("initial", _initial(instance, list(services.SITE_FIELDS)))
        super().__init__(*args, user=user, instance=instance, **kwargs)
        if instance is None:
            self.fields["customer"].queryset = selectors.customer_choices(user=user)
        else:
            del self.fields["customer"]  # a site never moves to another customer

    def perform(self) -> Site:
        if self.instance is None:
            return services.site_create(actor=self.user, **self.cleaned_data)
        return services.site_update(actor=self.user, site=self.instance, **self.cleaned_data)


class SiteFilterForm(SearchForm):
    search_hint = _("Name, address or city")
    customer = CustomerChoiceField(
        label=_("customer"), queryset=Customer.objects.none(), required=False
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = selectors.customer_choices(user=user)


# Contacts ------------------------------------------------------------------------------------


class ContactForm(ServiceForm):
    customer = CustomerChoiceField(label=_("customer"), queryset=Customer.objects.none())
    name = forms.CharField(label=_("name"), max_length=100)
    title = forms.CharField(label=_("role"), max_length=100, required=False)
    phone = forms.CharField(label=_("phone"), max_length=40, required=False, widget=forms.TelInput)
    email = forms.EmailField(label=_("email"), required=False)
    site = SiteChoiceField(label=_("site"), queryset=Site.objects.none(), required=False)
    is_vip = forms.BooleanField(label=_("VIP"), required=False)
    is_active = forms.BooleanField(label=_("active"), required=False, initial=True)
    notes = forms.CharField(
        label=_("notes"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(
        self,
        *args: Any,
        user: User,
        instance: Contact | None = None,
        customer: Customer | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("initial", _initial(instance, list(services.CONTACT_FIELDS)))
        super().__init__(*args, user=user, instance=instance, **kwargs)
        if instance is None:
            self.fields["customer"].queryset = selectors.customer_choices(user=user)
        else:
            del self.fields["customer"]  # a contact stays with their company
            customer = instance.customer
        self.fields["site"].queryset = selectors.site_list(
            user=user, customer_id=customer.pk if customer else None
        )

    def perform(self) -> Contact:
        if self.instance is None:
            return services.contact_create(actor=self.user, **self.cleaned_data)
        return services.contact_update(actor=self.user, contact=self.instance, **self.cleaned_data)


class ContactFilterForm(SiteFilterForm):
    search_hint = _("Name, phone, email or pinyin initials")


# Teams ---------------------------------------------------------------------------------------


class TeamForm(ServiceForm):
    name = forms.CharField(label=_("name"), max_length=100)
    description = forms.CharField(
        label=_("description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    lead = PersonChoiceField(label=_("team lead"), queryset=User.objects.none(), required=False)
    members = PeopleChoiceField(
        label=_("members"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    customers = CustomerMultipleChoiceField(
        label=_("customers served"),
        queryset=Customer.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, user: User, instance: Team | None = None, **kwargs: Any):
        initial = _initial(instance, ["name", "description", "lead"])
        if instance is not None:
            initial["members"] = list(instance.members.all())
            initial["customers"] = list(instance.customers.all())
        kwargs.setdefault("initial", initial)
        super().__init__(*args, user=user, instance=instance, **kwargs)
        staff = selectors.staff_choices(user=user)
        self.fields["lead"].queryset = staff
        self.fields["members"].queryset = staff
        self.fields["customers"].queryset = selectors.customer_choices(user=user)

    def perform(self) -> Team:
        if self.instance is None:
            return services.team_create(actor=self.user, **self.cleaned_data)
        return services.team_update(actor=self.user, team=self.instance, **self.cleaned_data)


# Users ---------------------------------------------------------------------------------------


class UserForm(ServiceForm):
    username = forms.CharField(label=_("username"), max_length=150)
    display_name = forms.CharField(label=_("display name"), max_length=100, required=False)
    email = forms.EmailField(label=_("email"), required=False)
    phone = forms.CharField(label=_("phone"), max_length=40, required=False, widget=forms.TelInput)
    role = forms.ChoiceField(
        label=_("role"),
        choices=Role.choices,
        initial=Role.ENGINEER,
        widget=forms.Select(attrs={"data-role-select": ""}),
    )
    customer = CustomerChoiceField(
        label=_("customer"),
        queryset=Customer.objects.none(),
        required=False,
        help_text=_("Customer users only: the company they belong to."),
        widget=forms.Select(attrs={"data-for-role": "customer"}),
    )
    is_customer_admin = forms.BooleanField(
        label=_("customer administrator"),
        required=False,
        help_text=_("Customer users only: sees all of their company's records."),
        widget=forms.CheckboxInput(attrs={"data-for-role": "customer"}),
    )
    customers = CustomerMultipleChoiceField(
        label=_("customers served"),
        queryset=Customer.objects.none(),
        required=False,
        help_text=_("Staff only: the customers this person serves directly."),
        widget=forms.CheckboxSelectMultiple(attrs={"data-for-role": "staff"}),
    )
    language = forms.ChoiceField(label=_("language"), choices=LANGUAGE_CHOICES, required=False)
    time_zone = forms.ChoiceField(
        label=_("time zone"), choices=TIME_ZONE_CHOICES, initial="Asia/Shanghai"
    )
    is_active = forms.BooleanField(
        label=_("active"),
        required=False,
        initial=True,
        help_text=_("Inactive accounts cannot log in; their history stays."),
    )
    password = forms.CharField(
        label=_("password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_(
            "At least 10 characters. Leave empty to create an account that cannot log in yet."
        ),
    )

    def __init__(self, *args: Any, user: User, instance: User | None = None, **kwargs: Any):
        names = ["display_name", "email", "phone", "role", "customer", "is_customer_admin"]
        initial = _initial(instance, [*names, "language", "time_zone", "is_active"])
        if instance is not None:
            initial["customers"] = list(instance.customers.all())
        kwargs.setdefault("initial", initial)
        super().__init__(*args, user=user, instance=instance, **kwargs)
        if user.role != Role.ADMIN:
            self.fields["role"].choices = [c for c in Role.choices if c[0] != Role.ADMIN]
        choices = selectors.customer_choices(user=user)
        self.fields["customer"].queryset = choices
        self.fields["customers"].queryset = choices
        if instance is not None:
            del self.fields["username"]
            self.fields["password"].label = _("new password")
            self.fields["password"].help_text = _("Leave empty to keep the current password.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The fields of the other kind of account are hidden in the browser; ignore what they hold.
        if data.get("role") == Role.CUSTOMER:
            data["customers"] = []
        else:
            data["customer"] = None
            data["is_customer_admin"] = False
        return data

    @transaction.atomic
    def perform(self) -> User:
        data = dict(self.cleaned_data)
        password = data.pop("password")
        if self.instance is None:
            return services.user_create(actor=self.user, password=password, **data)
        user = services.user_update(actor=self.user, user=self.instance, **data)
        if password:
            services.user_set_password(actor=self.user, user=user, password=password)
        return user


class UserFilterForm(SearchForm):
    search_hint = _("Username, name, email or phone")
    role = forms.ChoiceField(label=_("role"), choices=BLANK + Role.choices, required=False)
    customer = CustomerChoiceField(
        label=_("customer"), queryset=Customer.objects.none(), required=False
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = selectors.customer_choices(user=user)


# Audit log -----------------------------------------------------------------------------------


class AuditFilterForm(forms.Form):
    object_type = forms.ChoiceField(
        label=_("object type"), choices=BLANK + AUDITED_TYPES, required=False
    )
    action = forms.ChoiceField(
        label=_("action"), choices=BLANK + AuditEvent.Action.choices, required=False
    )
    source = forms.ChoiceField(
        label=_("source"), choices=BLANK + AuditEvent.Source.choices, required=False
    )
    actor = PersonChoiceField(label=_("who"), queryset=User.objects.none(), required=False)
    since = forms.DateField(
        label=_("from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("to"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Former staff stay in the list: their past actions are still searched for.
        self.fields["actor"].queryset = selectors.user_list(user=user).prefetch_related(None)

    def filters(self) -> dict[str, Any]:
        """Selector arguments; dates are whole days in the active (the user's) time zone."""
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        actor = data.get("actor")
        return {
            "object_type": data.get("object_type"),
            "action": data.get("action"),
            "source": data.get("source"),
            "actor_id": actor.pk if actor else None,
            "since": _start_of_day(since) if since else None,
            "until": _start_of_day(until + datetime.timedelta(days=1)) if until else None,
        }


def _start_of_day(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


# Sign-in and account -------------------------------------------------------------------------


class LoginForm(forms.Form):
    username = forms.CharField(
        label=_("username"),
        max_length=150,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    password = forms.CharField(
        label=_("password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, request, *args: Any, **kwargs: Any) -> None:
        self.request = request
        self.user: User | None = None
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("username") and data.get("password"):
            # Through authenticate() with the request, so django-axes counts the failures.
            self.user = authenticate(
                self.request, username=data["username"], password=data["password"]
            )
            if self.user is None:
                raise ValidationError(_("Wrong username or password."), code="invalid_login")
        return data


class OtpForm(forms.Form):
    code = forms.CharField(
        label=_("six-digit code"),
        max_length=10,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
            }
        ),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        if not services.totp_verify(user=self.user, code=code):
            raise ValidationError(_("The code does not match. Check the phone's clock."))
        return code


class ProfileForm(ServiceForm):
    """What every user may change about themselves."""

    display_name = forms.CharField(label=_("display name"), max_length=100, required=False)
    email = forms.EmailField(label=_("email"), required=False)
    phone = forms.CharField(label=_("phone"), max_length=40, required=False, widget=forms.TelInput)
    language = forms.ChoiceField(label=_("language"), choices=LANGUAGE_CHOICES, required=False)
    time_zone = forms.ChoiceField(label=_("time zone"), choices=TIME_ZONE_CHOICES)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial", _initial(user, ["display_name", "email", "phone", "language", "time_zone"])
        )
        super().__init__(*args, user=user, instance=user, **kwargs)

    def perform(self) -> User:
        return services.user_update(actor=self.user, user=self.user, **self.cleaned_data)


class PasswordChangeForm(ServiceForm):
    field_aliases = {"password": "new_password"}

    old_password = forms.CharField(
        label=_("current password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    new_password = forms.CharField(
        label=_("new password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 10 characters, not too common, not all digits."),
    )
    new_password_again = forms.CharField(
        label=_("new password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_old_password(self) -> str:
        password = self.cleaned_data["old_password"]
        if not self.user.check_password(password):
            raise ValidationError(_("Your current password was entered incorrectly."))
        return password

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        new, again = data.get("new_password"), data.get("new_password_again")
        if new and again and new != again:
            self.add_error("new_password_again", _("The two passwords differ."))
        return data

    def perform(self) -> User:
        return services.user_set_password(
            actor=self.user, user=self.user, password=self.cleaned_data["new_password"]
        )


class ApiTokenForm(ServiceForm):
    name = forms.CharField(
        label=_("name"),
        max_length=100,
        required=False,
        help_text=_("What the token is for, e.g. “monitoring script”."),
    )
    expires_in_days = forms.IntegerField(
        label=_("expires after (days)"),
        min_value=1,
        max_value=3650,
        required=False,
        help_text=_("Leave empty for a token that does not expire."),
    )

    def perform(self) -> tuple[Any, str]:
        return services.api_token_create(user=self.user, **self.cleaned_data)


class TotpConfirmForm(ServiceForm):
    code = forms.CharField(
        label=_("six-digit code"),
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def perform(self) -> User:
        return services.user_totp_enable(
            actor=self.user, user=self.user, code=self.cleaned_data["code"]
        )


class TotpDisableForm(ServiceForm):
    password = forms.CharField(
        label=_("password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Confirm with your password to turn two-factor authentication off."),
    )

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError(_("Your password was entered incorrectly."))
        return password

    def perform(self) -> User:
        return services.user_totp_disable(actor=self.user, user=self.user)
