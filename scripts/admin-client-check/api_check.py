"""Uses qubesadmin as a program would (no tools): lists the qubes, reads
their properties, and follows admin.Events while a halted qube is started
and killed.

usage: api_check.py APPVM DEFAULT_NETVM   (APPVM must be halted)
Prints one line per problem, then 'events ok' when there was none.
"""

import asyncio
import sys

import qubes_local

qubes_local.apply()

# pylint: disable=wrong-import-position
import qubesadmin  # noqa: E402
import qubesadmin.app  # noqa: E402
import qubesadmin.events  # noqa: E402

EVENT_WAIT = 15.0


def check_properties(app: qubesadmin.app.QubesBase, appvm: str, netvm: str) -> list[str]:
    problems: list[str] = []
    if not isinstance(app, qubesadmin.app.QubesLocal):
        problems.append(f'client is {type(app).__name__}, not QubesLocal')
    names = [vm.name for vm in app.domains]
    for name in ('dom0', appvm, netvm):
        if name not in names:
            problems.append(f'{name} not in app.domains')
    for vm in app.domains:
        try:
            _ = (vm.klass, vm.label.name, vm.qid, vm.uuid, vm.get_power_state())
        except Exception as e:  # pylint: disable=broad-except
            problems.append(f'{vm.name}: reading properties failed: {e!r}')
    if str(app.default_netvm) != netvm:
        problems.append(f'default_netvm is {app.default_netvm}, expected {netvm}')
    vm = app.domains[appvm]
    if vm.klass != 'AppVM':
        problems.append(f'{appvm}.klass is {vm.klass}')
    if str(vm.netvm) != netvm or not vm.property_is_default('netvm'):
        problems.append(f'{appvm}.netvm is {vm.netvm}, expected default {netvm}')
    if vm.get_power_state() != 'Halted':
        problems.append(f'{appvm} is {vm.get_power_state()}, expected Halted')
    if app.domains['dom0'].klass != 'AdminVM':
        problems.append('dom0 is not an AdminVM')
    return problems


def position(seen: list[tuple[str, str]], subject: str, event: str) -> int:
    try:
        return seen.index((subject, event))
    except ValueError:
        return -1


async def check_events(app: qubesadmin.app.QubesBase, appvm: str) -> list[str]:
    problems: list[str] = []
    seen: list[tuple[str, str]] = []
    got = {'start': asyncio.Event(), 'shutdown': asyncio.Event()}

    def record(subject: object, event: str, **_kwargs: str) -> None:
        name = getattr(subject, 'name', '') if subject is not None else ''
        seen.append((name, event))
        if name == appvm and event == 'domain-start':
            got['start'].set()
        if name == appvm and event == 'domain-shutdown':
            got['shutdown'].set()

    dispatcher = qubesadmin.events.EventsDispatcher(app)
    dispatcher.add_handler('*', record)
    listener = asyncio.create_task(dispatcher.listen_for_events(reconnect=False))
    # Give the subscription time to reach qubesd before anything happens.
    await asyncio.sleep(1.0)
    vm = app.domains[appvm]
    try:
        await asyncio.to_thread(vm.start)
        await asyncio.wait_for(got['start'].wait(), EVENT_WAIT)
        if vm.get_power_state() != 'Running':
            problems.append(f'{appvm} is {vm.get_power_state()} after domain-start')
        await asyncio.to_thread(vm.kill)
        await asyncio.wait_for(got['shutdown'].wait(), EVENT_WAIT)
    except asyncio.TimeoutError:
        problems.append('timed out waiting for domain-start/domain-shutdown')
    except Exception as e:  # pylint: disable=broad-except
        problems.append(f'start/kill failed: {e!r}')
    finally:
        dispatcher.stop()
        listener.cancel()
        try:
            await listener
        except (asyncio.CancelledError, Exception):  # pylint: disable=broad-except
            pass
    order = ['domain-pre-start', 'domain-spawn', 'domain-start',
             'domain-stopped', 'domain-shutdown']
    places = [position(seen, appvm, e) for e in order]
    for event, place in zip(order, places):
        if place < 0:
            problems.append(f'no {event} event for {appvm}')
    found = [p for p in places if p >= 0]
    if found != sorted(found):
        problems.append(f'events out of order: {[e for s, e in seen if s == appvm]}')
    # The dispatcher keeps the client's cache current from events.
    if vm.get_power_state() != 'Halted':
        problems.append(f'{appvm} is {vm.get_power_state()} after domain-shutdown')
    return problems


def main() -> int:
    appvm, netvm = sys.argv[1], sys.argv[2]
    app = qubesadmin.Qubes()
    problems = check_properties(app, appvm, netvm)
    problems += asyncio.run(check_events(app, appvm))
    for problem in problems:
        print(problem)
    if not problems:
        print('events ok')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
