from django.urls import path

from onestop.contracts import views

urlpatterns = [
    path("contracts/", views.contract_list, name="contract_list"),
    path("contracts/new/", views.contract_pages.create, name="contract_create"),
    path("contracts/<int:pk>/", views.contract_detail, name="contract_detail"),
    path("contracts/<int:pk>/edit/", views.contract_pages.edit, name="contract_edit"),
    path("contracts/<int:pk>/delete/", views.contract_pages.delete, name="contract_delete"),
    path("sla-policies/", views.sla_policy_list, name="sla_policy_list"),
    path("sla-policies/new/", views.sla_policy_pages.create, name="sla_policy_create"),
    path("sla-policies/<int:pk>/", views.sla_policy_detail, name="sla_policy_detail"),
    path("sla-policies/<int:pk>/edit/", views.sla_policy_pages.edit, name="sla_policy_edit"),
    path("sla-policies/<int:pk>/delete/", views.sla_policy_pages.delete, name="sla_policy_delete"),
    path("calendars/", views.calendar_list, name="calendar_list"),
    path("calendars/new/", views.calendar_pages.create, name="calendar_create"),
    path("calendars/<int:pk>/", views.calendar_detail, name="calendar_detail"),
    path("calendars/<int:pk>/edit/", views.calendar_pages.edit, name="calendar_edit"),
    path("calendars/<int:pk>/delete/", views.calendar_pages.delete, name="calendar_delete"),
    path(
        "calendars/<int:pk>/import-chinese/",
        views.calendar_import_chinese,
        name="calendar_import_chinese",
    ),
    path(
        "calendars/<int:pk>/import-ical/", views.calendar_import_ical, name="calendar_import_ical"
    ),
    path("calendars/<int:pk>/days/", views.calendar_day_set, name="calendar_day_set"),
    path(
        "calendars/<int:pk>/days/<int:day_pk>/delete/",
        views.calendar_day_delete,
        name="calendar_day_delete",
    ),
]
