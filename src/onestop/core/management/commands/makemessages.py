"""`makemessages` that also extracts the probes' messages.

Probes run without Django, so they write their messages as `note("template", **params)`
(onestop.monitoring.probes.base) and the template is translated where it is shown.
"""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=note"]
