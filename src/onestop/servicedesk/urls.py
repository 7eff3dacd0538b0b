from django.urls import path

from onestop.servicedesk import views

# Every name starts with "ticket_": the menu's "Tickets" entry covers all of these pages.
urlpatterns = [
    path("tickets/", views.ticket_list, name="ticket_list"),
    path("tickets/mine/", views.ticket_mine, name="ticket_mine"),
    path("tickets/board/", views.ticket_board, name="ticket_board"),
    path("tickets/bulk/", views.ticket_bulk, name="ticket_bulk"),
    path("tickets/recurring/", views.ticket_recurring_list, name="ticket_recurring_list"),
    path("tickets/recurring/new/", views.ticket_recurring_create, name="ticket_recurring_create"),
    path(
        "tickets/recurring/<int:pk>/edit/",
        views.ticket_recurring_edit,
        name="ticket_recurring_edit",
    ),
    path(
        "tickets/recurring/<int:pk>/delete/",
        views.ticket_recurring_delete,
        name="ticket_recurring_delete",
    ),
    path("tickets/canned/", views.ticket_canned_list, name="ticket_canned_list"),
    path("tickets/canned/new/", views.ticket_canned_create, name="ticket_canned_create"),
    path("tickets/canned/<int:pk>/edit/", views.ticket_canned_edit, name="ticket_canned_edit"),
    path(
        "tickets/canned/<int:pk>/delete/",
        views.ticket_canned_delete,
        name="ticket_canned_delete",
    ),
    path("tickets/<int:pk>/canned/", views.ticket_canned_insert, name="ticket_canned_insert"),
    path("tickets/views/save/", views.ticket_view_save, name="ticket_view_save"),
    path("tickets/views/<int:pk>/delete/", views.ticket_view_delete, name="ticket_view_delete"),
    path("tickets/routing/", views.ticket_routing, name="ticket_routing"),
    path("tickets/new/", views.ticket_create, name="ticket_create"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<int:pk>/edit/", views.ticket_edit, name="ticket_edit"),
    path("tickets/<int:pk>/delete/", views.ticket_delete, name="ticket_delete"),
    path("tickets/<int:pk>/reply/", views.ticket_reply, name="ticket_reply"),
    path("tickets/<int:pk>/status/", views.ticket_status, name="ticket_status"),
    path("tickets/<int:pk>/rate/", views.ticket_rate, name="ticket_rate"),
    path("tickets/<int:pk>/attach/", views.ticket_attach, name="ticket_attach"),
    path("tickets/<int:pk>/people/", views.ticket_people, name="ticket_people"),
    path("tickets/<int:pk>/merge/", views.ticket_merge, name="ticket_merge"),
    path("tickets/<int:pk>/time/", views.ticket_time, name="ticket_time"),
    path("tickets/<int:pk>/visits/", views.ticket_visit_create, name="ticket_visit_create"),
    path("tickets/visits/<int:pk>/", views.ticket_visit, name="ticket_visit"),
    path("tickets/visits/<int:pk>/edit/", views.ticket_visit_edit, name="ticket_visit_edit"),
    path("tickets/visits/<int:pk>/cancel/", views.ticket_visit_cancel, name="ticket_visit_cancel"),
    path(
        "tickets/visits/<int:pk>/check-in/",
        views.ticket_visit_check_in,
        name="ticket_visit_check_in",
    ),
    path("tickets/visits/<int:pk>/sign/", views.ticket_visit_sign, name="ticket_visit_sign"),
    # The knowledge base has its own menu entry ("knowledge").
    path("kb/", views.knowledge_list, name="knowledge_list"),
    path("kb/new/", views.knowledge_create, name="knowledge_create"),
    path("kb/<int:pk>/", views.knowledge_detail, name="knowledge_detail"),
    path("kb/<int:pk>/edit/", views.knowledge_edit, name="knowledge_edit"),
    path("kb/<int:pk>/delete/", views.knowledge_delete, name="knowledge_delete"),
]
