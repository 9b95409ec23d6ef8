"""Dramatiq workers: take a Delivery id, render its template, compose the mail, send it."""
