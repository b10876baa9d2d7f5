/** The policy a fresh simulated dom0 starts with: the everyday rules of a stock Qubes install. */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_POLICY_FILE = '90-default.policy';
export const ADMIN_DEFAULT_POLICY_FILE = '90-admin-default.policy';

const DEFAULT_POLICY = `# Everyday services between qubes, as a stock Qubes install ships them.
# Files under policy.d are read in name order and the first matching line wins:
# put your own rules in a file whose name sorts earlier (e.g. 30-user.policy).

## Moving data between qubes: the operator confirms each transfer.
qubes.Filecopy          *  @anyvm  @anyvm    ask
qubes.OpenInVM          *  @anyvm  @dispvm   allow
qubes.OpenInVM          *  @anyvm  @anyvm    ask
qubes.OpenURL           *  @anyvm  @dispvm   allow
qubes.OpenURL           *  @anyvm  @anyvm    ask
qubes.StartApp          *  @anyvm  @dispvm   allow
qubes.StartApp          *  @anyvm  @anyvm    ask
qubes.ClipboardPaste    *  @anyvm  @anyvm    ask

## Converters run in a fresh disposable and nowhere else.
qubes.PdfConvert        *  @anyvm  @dispvm   allow
qubes.PdfConvert        *  @anyvm  @anyvm    deny
qubes.GetImageRGBA      *  @anyvm  @dispvm   allow
qubes.GetImageRGBA      *  @anyvm  @anyvm    ask

## Shells and raw commands only from dom0.
qubes.VMShell           *  @adminvm  @anyvm  allow
qubes.VMShell           *  @anyvm    @anyvm  deny
qubes.VMExec            *  @adminvm  @anyvm  allow
qubes.VMExec            *  @anyvm    @anyvm  deny
qubes.WaitForSession    *  @adminvm  @anyvm  allow

## Small facts every qube may ask dom0 for.
qubes.GetDate           *  @anyvm  @adminvm  allow
qubes.GetDate           *  @anyvm  @default  allow target=@adminvm
qubes.NotifyTools       *  @anyvm  @adminvm  allow
qubes.NotifyUpdates     *  @anyvm  @adminvm  allow
qubes.FeaturesRequest   *  @anyvm  @adminvm  allow
qubes.SyncAppMenus      *  @type:TemplateVM  @adminvm  allow
qubes.SyncAppMenus      *  @anyvm  @adminvm  deny

## Templates fetch updates through the update proxy qube.
qubes.UpdatesProxy      *  @type:TemplateVM  @default  allow target=sys-net
qubes.UpdatesProxy      *  @anyvm  @anyvm    deny

## Networking by name between qubes is off unless asked for.
qubes.ConnectTCP        *  @anyvm  @anyvm    ask

## Keys and devices: the operator decides each time.
qubes.Gpg               *  @anyvm  @anyvm    ask
qubes.USB               *  @anyvm  @anyvm    ask
`;

const ADMIN_DEFAULT_POLICY = `# The Admin API. dom0's own tools talk to qubesd directly; these lines
# cover qubes that call it over qrexec. Nothing is allowed by default:
# grant a management qube what it needs in an earlier file.

admin.Events            *  @anyvm  @adminvm  deny
admin.vm.List           *  @anyvm  @adminvm  deny
`;

/** The default files, by name, as a fresh simulated dom0 has them. */
export const DEFAULT_POLICIES: readonly { readonly name: string; readonly text: string }[] = [
  { name: DEFAULT_POLICY_FILE, text: DEFAULT_POLICY },
  { name: ADMIN_DEFAULT_POLICY_FILE, text: ADMIN_DEFAULT_POLICY },
];

/** Writes the default policy into DOM0ROOT/etc/qubes/policy.d, leaving any existing file as it is. */
export function seedDefaultPolicy(dom0Root: string): void {
  const dir = join(dom0Root, 'etc', 'qubes', 'policy.d');
  mkdirSync(dir, { recursive: true });
  for (const { name, text } of DEFAULT_POLICIES) {
    const path = join(dir, name);
    if (!existsSync(path)) writeFileSync(path, text, { mode: 0o644 });
  }
}
