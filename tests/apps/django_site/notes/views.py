from django.http import JsonResponse
from django.urls import reverse

from .models import Note


def note_list(request):
    notes = [{'title': n.title, 'body': n.body} for n in Note.objects.order_by('id')]
    return JsonResponse({'notes': notes, 'self': reverse('note-list'), 'admin': reverse('admin:index')})
