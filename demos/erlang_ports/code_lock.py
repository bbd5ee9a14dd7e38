"""Port of the code lock door from OTP's design principles, gen_statem chapter.

Two versions, clause for clause:
- `CodeLock`: the chapter's "Example" (callback mode state_functions): states `locked`
  and `open` are methods; a correct code unlocks the door for 10 s (a state time-out).
- `CodeLockEvents`: the "One State Callback" variant (handle_event_function): one
  handle_event/4 that branches on the event first, then on the state, plus the
  code_length/0 call.

Erlang maps are dicts here (#{code := Code} is data["code"]); io:format is print. The
door's open time is the class attribute OPEN_TIME (10_000 ms, as in the chapter); the
demo run below uses a subclass with a short one so that it ends quickly.

    python -m demos.erlang_ports.code_lock
"""

from __future__ import annotations

from typing import Any

from actors import Node, gen_statem
from actors.otp_types import CallbackMode, EventResult, StatemInitResult

NAME = "code_lock"
Data = dict[str, Any]  # #{code := [button], length := int, buttons := [button]}


# -- the "Example" section: state_functions --------------------------------------------------


class CodeLock(gen_statem.GenStatem):
    OPEN_TIME = 10_000  # ms

    @classmethod
    def start_link(cls, code: list[Any]) -> Any:
        return gen_statem.start_link(("local", NAME), cls, code, [])

    @staticmethod
    def button(button: Any) -> str:
        return gen_statem.cast(NAME, ("button", button))

    def init(self, code: list[Any]) -> StatemInitResult[str, Data]:
        do_lock()
        data = {"code": code, "length": len(code), "buttons": []}
        return ("ok", "locked", data)

    def callback_mode(self) -> CallbackMode:
        return "state_functions"

    def locked(self, event_type: Any, event_content: Any, data: Data) -> EventResult[str, Data]:
        match (event_type, event_content):
            case ("cast", ("button", button)):
                code, length, buttons = data["code"], data["length"], data["buttons"]
                new_buttons = (buttons if len(buttons) < length else buttons[1:]) + [button]
                if new_buttons == code:  # Correct
                    do_unlock()
                    return ("next_state", "open", {**data, "buttons": []},
                            [("state_timeout", self.OPEN_TIME, "lock")])  # Time in ms
                # Incomplete | Incorrect
                return ("next_state", "locked", {**data, "buttons": new_buttons})
        raise gen_statem_function_clause("locked", event_type, event_content)

    def open(self, event_type: Any, event_content: Any, data: Data) -> EventResult[str, Data]:
        match (event_type, event_content):
            case ("state_timeout", "lock"):
                do_lock()
                return ("next_state", "locked", data)
            case ("cast", ("button", _)):
                return ("next_state", "open", data)
        raise gen_statem_function_clause("open", event_type, event_content)

    def terminate(self, reason: Any, state: Any, data: Any) -> Any:
        if state != "locked":
            do_lock()
        return "ok"


# -- the "One State Callback" section: handle_event_function ---------------------------------


class CodeLockEvents(CodeLock):

    @staticmethod
    def code_length() -> Any:
        return gen_statem.call(NAME, "code_length")

    def callback_mode(self) -> CallbackMode:
        return "handle_event_function"

    def handle_event(self, event_type: Any, event_content: Any, state: str,
                     data: Data) -> EventResult[str, Data]:
        match (event_type, event_content, state):
            case ("cast", ("button", button), _):
                code = data["code"]
                if state == "locked":
                    length, buttons = data["length"], data["buttons"]
                    new_buttons = (buttons if len(buttons) < length else buttons[1:]) + [button]
                    if new_buttons == code:  # Correct
                        do_unlock()
                        return ("next_state", "open", {**data, "buttons": []},
                                [("state_timeout", self.OPEN_TIME, "lock")])  # Time in ms
                    # Incomplete | Incorrect
                    return ("keep_state", {**data, "buttons": new_buttons})
                if state == "open":
                    return "keep_state_and_data"
            case ("state_timeout", "lock", "open"):
                do_lock()
                return ("next_state", "locked", data)
            case (("call", from_), "code_length", _):
                return ("keep_state", data, [("reply", from_, len(data["code"]))])
        raise gen_statem_function_clause("handle_event", event_type, event_content)


def do_lock() -> None:
    print("Lock", flush=True)


def do_unlock() -> None:
    print("Unlock", flush=True)


def gen_statem_function_clause(fun: str, *args: Any) -> Exception:
    """Erlang's function_clause: no clause matched (the machine crashes with it)."""
    from actors import Error

    return Error(("function_clause", ("code_lock", fun, list(args))))


# -- the demo ------------------------------------------------------------------------------


def run(lock: type[CodeLock]) -> None:
    """Start the lock, try a wrong code, the right one, press while open, and wait for the
    door to lock itself again (its state time-out)."""
    from actors import sys as sys_

    print(f"== {lock.__name__} ({lock().callback_mode()})")
    _, pid = lock.start_link([1, 2, 3, 4])
    for b in (9, 1, 2):
        lock.button(b)
    print("state after 9, 1, 2:", sys_.get_state(NAME)[0])
    for b in (3, 4):
        lock.button(b)
    print("state after 3, 4:", sys_.get_state(NAME)[0])
    if issubclass(lock, CodeLockEvents):
        print("code_length:", lock.code_length())
    lock.button(7)  # ignored while open
    from actors import erlang

    ref = erlang.monitor("process", pid)
    erlang.receive(lambda _m: False, lock.OPEN_TIME + 200)  # the door locks itself
    print("state after the open time:", sys_.get_state(NAME)[0])
    gen_statem.stop(NAME)
    erlang.receive(lambda m: type(m) is tuple and m[:2] == ("DOWN", ref), 5000)


def main() -> None:
    class QuickLock(CodeLock):
        OPEN_TIME = 300

    class QuickLockEvents(CodeLockEvents):
        OPEN_TIME = 300

    node = Node("code_lock@localhost")
    try:
        with node.bound():
            run(QuickLock)
            run(QuickLockEvents)
    finally:
        node.stop()


if __name__ == "__main__":
    main()
