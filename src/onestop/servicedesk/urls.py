from django.urls import path

from onestop.servicedesk import views

# Every name starts with "ticket_": the menu's "Tickets" entry covers all of these pages.
urlpatterns = [
    path("tickets/", views.ticket_list, name="ticket_list"),
    path("tickets/mine/", views.ticket_mine, name="ticket_mine"),
    path("tickets/board/", views.ticket_board, name="ticket_board"),
    path("tickets/bulk/", views.ticket_bulk, name="ticket_bulk"),
    path("tickets/new/", views.ticket_create, name="ticket_create"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<int:pk>/edit/", views.ticket_edit, name="ticket_edit"),
    path("tickets/<int:pk>/delete/", views.ticket_delete, name="ticket_delete"),
    path("tickets/<int:pk>/reply/", views.ticket_reply, name="ticket_reply"),
    path("tickets/<int:pk>/status/", views.ticket_status, name="ticket_status"),
    path("tickets/<int:pk>/rate/", views.ticket_rate, name="ticket_rate"),
]
