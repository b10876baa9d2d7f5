/** admin.vm.Create.*, admin.vm.CreateInPool.*, admin.vm.CreateDisposable. */
import { qubeNameProblem } from '../../../shared/names.js';
import { QubesError, SilentClose, err } from '../errors.js';
import { LABELS } from '../properties.js';
import type { Klass, VmState } from '../state.js';
import type { CallContext, MethodTable } from './types.js';
import { m } from './types.js';

const CREATABLE: readonly Klass[] = ['AppVM', 'DispVM', 'StandaloneVM', 'TemplateVM'];
const POOLS = new Set(['varlibqubes', 'linux-kernel']);

const LABEL_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.';

/** qubes.utils.validate_label_name at creation. */
function checkLabelName(v: string): void {
  if (!v) throw new QubesError('QubesInvalidLabelError', 'Label name must be set');
  if (/^[0-9]+$/.test(v)) throw new QubesError('QubesInvalidLabelError', 'Label must not be a digit');
  if (![...v].every((c) => LABEL_CHARS.includes(c))) throw new QubesError('QubesInvalidLabelError', `Label must be in safe set: ${LABEL_CHARS}`);
}

function create(klass: Klass, allowPool: boolean) {
  return (ctx: CallContext): null => {
    const { app } = ctx;
    const templated = klass === 'AppVM' || klass === 'DispVM';
    let template: VmState | undefined;
    let invalidTemplate = false;
    if (ctx.arg) {
      if (!templated) throw err.protocol(`${klass} cannot be based on template`);
      template = app.get(ctx.arg);
      invalidTemplate = !template;
    }
    for (const b of ctx.payload) if (b > 0x7f) throw err.protocol('Parameters contains non-ASCII characters');
    // name and a known label, as qubesd's kwargs: only these must be unique
    const params = new Map<string, string>();
    let pool = false;
    const pools = new Set<string>();
    // qubesd keeps the last unknown pool's error for after the permission check
    let invalidPool: string | null = null;
    for (const p of ctx.payload.toString('latin1').split(' ')) {
      const eq = p.indexOf('=');
      // Python's unpacking of split('=', 1) fails with a plain ValueError
      if (eq < 0) throw new Error('not enough values to unpack');
      const key = p.slice(0, eq);
      const value = p.slice(eq + 1);
      if (params.has(key)) throw err.protocol('Options must be unique');
      if (key === 'name') {
        const problem = qubeNameProblem(value);
        if (problem) throw err.value(problem);
        params.set(key, value);
      } else if (key === 'label') {
        checkLabelName(value);
        // an unknown label is left out, so the request lacks one
        if (LABELS.some((l) => l.name === value)) params.set(key, value);
      } else if (allowPool && key === 'pool') {
        if (pool) throw err.protocol("Option 'pool' must be unique");
        if (POOLS.has(value)) pool = true;
        else invalidPool = value;
      } else if (allowPool && key.startsWith('pool:')) {
        const volume = key.slice(5);
        if (!['root', 'private', 'volatile', 'kernel'].includes(volume)) {
          throw err.protocol('Volume must be one of: root, private, volatile, kernel');
        }
        if (pools.has(volume)) throw err.protocol(`Option 'pool:${volume}' must be unique`);
        if (POOLS.has(value)) pools.add(volume);
        else invalidPool = value;
      } else if (key === 'pool' || key.startsWith('pool:')) {
        throw err.protocol("Pool option specified but 'allow_pool' is False");
      } else {
        throw err.protocol('Options does not match: name, label, pool, pool:');
      }
    }
    const name = params.get('name');
    const label = params.get('label');
    if (name === undefined) throw err.protocol('Creation requested without key: name');
    if (label === undefined) throw err.protocol('Creation requested without key: label');
    if (pool && pools.size > 0) throw err.protocol("Conflicting options specified: 'pool=', 'pool:volume='");
    if (app.get(name)) throw err.alreadyExists(name);
    if (invalidTemplate) throw err.vmNotFound(ctx.arg);
    if (invalidPool !== null) throw err.generic(`Unknown storage pool ${invalidPool}`);
    if (templated && !template) {
      // add_new_vm: a disposable's default is default_dispvm, an AppVM's default_template
      const d = app.globalValue(klass === 'DispVM' ? 'default_dispvm' : 'default_template');
      template = typeof d === 'string' ? app.get(d) : undefined;
      if (!template) throw err.value('Template for the qube not specified, nor default template set.');
    }
    // AppVM's constructor reads the template's volume_config, which dom0 lacks: no reply
    if (template?.klass === 'AdminVM' && klass === 'AppVM') throw new SilentClose('dom0 as a template');
    // a DispVM's template is checked by createDispVM: any qube with template_for_dispvms
    if (template && klass === 'AppVM' && template.klass !== 'TemplateVM') {
      throw err.propertyValue(`wrong VM class: domains[${app.qubeRepr(template)}] is of type ${template.klass} and not TemplateVM`);
    }
    let vm: VmState;
    if (klass === 'DispVM') {
      if (!template) throw err.value('Template for the qube not specified, nor default template set.');
      vm = app.createDispVM(name, label, template);
    } else {
      vm = app.addVm({ name, klass, label, template: template?.name ?? null });
    }
    app.addTag(vm, `created-by-${ctx.src.name}`);
    app.createOnDisk(vm);
    app.save();
    return null;
  };
}

function createDisposable(ctx: CallContext): string {
  if (ctx.arg !== '' && ctx.arg !== 'preload') throw err.permission("Argument not in \"'', 'preload'\"");
  const p = ctx.payload.toString('latin1');
  if (p !== '' && p !== 'uuid') throw err.protocol("Invalid payload, expected empty string or 'uuid'");
  const { app } = ctx;
  let tpl: VmState | undefined = ctx.dest;
  if (ctx.dest.name === 'dom0') {
    const d = app.propValue(ctx.src, 'default_dispvm');
    tpl = typeof d === 'string' ? app.get(d) : undefined;
  }
  if (ctx.arg === 'preload') {
    // qubesd fires an event on the missing template: an AttributeError, no reply
    if (!tpl) throw new SilentClose('no default disposable template to preload');
    return '';
  }
  const vm = app.createDisposable(tpl);
  app.addTag(vm, `created-by-${ctx.src.name}`);
  app.addTag(vm, `disp-created-by-${ctx.src.name}`);
  app.save();
  return p === 'uuid' ? `uuid:${vm.uuid}` : vm.name;
}

export const createMethods: MethodTable = Object.assign(
  { 'admin.vm.CreateDisposable': m(null, null, null, createDisposable) },
  ...CREATABLE.map((k) => ({
    [`admin.vm.Create.${k}`]: m(null, null, true, create(k, false)),
    [`admin.vm.CreateInPool.${k}`]: m(null, null, true, create(k, true)),
  })),
);
