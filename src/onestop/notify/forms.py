"""Forms of the channel, rule, delivery-log and preference pages; as elsewhere, `save()` hands
the input to the services, whose errors land on the form and change nothing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from onestop.core import selectors as core_selectors
from onestop.core.forms import BLANK, ChoiceField, CustomerChoiceField, ServiceForm
from onestop.core.models import Customer, Team, User
from onestop.notify import services
from onestop.notify.models import Channel, Delivery, Preference, Rule


def event_choices() -> list[tuple[str, Any]]:
    return list(services.EVENT_LABELS.items())


class ChannelForm(ServiceForm):
    """A channel; the URL and secret are write-only, blank on edit keeps the stored ones."""

    name = forms.CharField(label=_("name"), max_length=100)
    kind = forms.ChoiceField(label=_("kind"), choices=Channel.Kind.choices)
    url = forms.CharField(
        label=_("robot or webhook address"),
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "url"}),
        help_text=_("The robot's webhook address, token included. Stored encrypted."),
    )
    secret = forms.CharField(
        label=_("signing secret"),
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("DingTalk “加签” secret, Feishu signature key or the webhook's HMAC key."),
    )
    email_to = forms.CharField(
        label=_("email addresses"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("For an email channel: one address per line or separated by commas."),
    )
    is_active = forms.BooleanField(label=_("active"), required=False, initial=True)

    def __init__(self, *args: Any, user: User, instance: Channel | None = None, **kwargs: Any):
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {n: getattr(instance, n) for n in ("name", "kind", "email_to", "is_active")},
            )
        super().__init__(*args, user=user, instance=instance, **kwargs)
        if instance is not None:
            # The kind decides how the stored URL and secret are used: it is fixed once made.
            self.fields["kind"].disabled = True
            self.fields["url"].help_text = _("Leave empty to keep the stored address.")
            self.fields["secret"].help_text = _("Leave empty to keep the stored secret.")

    def perform(self) -> Channel:
        data = dict(self.cleaned_data)
        if self.instance is None:
            return services.channel_create(actor=self.user, **data)
        data.pop("kind")
        return services.channel_update(actor=self.user, channel=self.instance, **data)


class RuleForm(ServiceForm):
    name = forms.CharField(label=_("name"), max_length=100)
    channel = ChoiceField(label=_("channel"), queryset=Channel.objects.none())
    events = forms.MultipleChoiceField(
        label=_("events"), choices=event_choices, widget=forms.CheckboxSelectMultiple
    )
    customer = CustomerChoiceField(
        label=_("only for customer"), queryset=Customer.objects.none(), required=False
    )
    team = ChoiceField(label=_("only for team"), queryset=Team.objects.none(), required=False)
    priorities = forms.MultipleChoiceField(
        label=_("only for priorities"),
        choices=[(p, p) for p in services.PRIORITIES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    language = forms.ChoiceField(label=_("language"), choices=settings.LANGUAGES)
    is_active = forms.BooleanField(label=_("active"), required=False, initial=True)

    def __init__(self, *args: Any, user: User, instance: Rule | None = None, **kwargs: Any):
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {n: getattr(instance, n) for n in services.RULE_FIELDS if n != "channel"}
                | {
                    "channel": instance.channel_id,
                    "customer": instance.customer_id,
                    "team": instance.team_id,
                },
            )
        super().__init__(*args, user=user, instance=instance, **kwargs)
        self.fields["channel"].queryset = Channel.objects.order_by("name")
        self.fields["customer"].queryset = core_selectors.customer_choices(user=user)
        self.fields["team"].queryset = core_selectors.team_list(user=user).prefetch_related(None)

    def perform(self) -> Rule:
        if self.instance is None:
            return services.rule_create(actor=self.user, **self.cleaned_data)
        return services.rule_update(actor=self.user, rule=self.instance, **self.cleaned_data)


class DeliveryFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("state"), choices=BLANK + list(Delivery.State.choices), required=False
    )
    channel = ChoiceField(label=_("channel"), queryset=Channel.objects.none(), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = Channel.objects.order_by("name")


class PreferenceForm(ServiceForm):
    muted_events = forms.MultipleChoiceField(
        label=_("events I am not told of"),
        choices=event_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    email_events = forms.MultipleChoiceField(
        label=_("events also sent to me by email"),
        choices=event_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    quiet_from = forms.TimeField(
        label=_("quiet hours from"), required=False, widget=forms.TimeInput(attrs={"type": "time"})
    )
    quiet_until = forms.TimeField(
        label=_("quiet hours until"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=_("Emails wait until the quiet hours end; the inbox is always written."),
    )

    def __init__(self, *args: Any, user: User, instance: Preference | None = None, **kwargs: Any):
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    n: getattr(instance, n)
                    for n in ("muted_events", "email_events", "quiet_from", "quiet_until")
                },
            )
        super().__init__(*args, user=user, instance=instance, **kwargs)

    def perform(self) -> Preference:
        return services.preference_set(user=self.user, **self.cleaned_data)
