"""DingTalk (钉钉) adapter: everything that speaks DingTalk's protocol lives here.

- crypto.py: event-subscription AES (dingtalk-sdk's DingTalkCrypto), robot/card/custom-robot
  HMAC signatures, timestamp windows;
- normalize.py: the one normaliser for HTTP callbacks and Stream frames (raw -> inbox payload ->
  neutral bot.events);
- inbound.py: storing verified callbacks in the inbox (cards handled inline within 2 s);
- stream.py: Stream mode (WebSocket) as a second transport;
- client.py, messages.py, errors.py: the async API client, message payloads, error kinds.

The HTTP routes and the wiring are in bot/api/dingtalk_callbacks.py (setup_dingtalk).
"""
