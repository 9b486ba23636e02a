"""Channel adapters: SMS, voice, Telegram and console.

Rule: a channel verifies a request, turns it into an Inbound, calls run_turn and
renders the replies in its own form. It never branches on the conversation step
and never imports booking/.
"""
