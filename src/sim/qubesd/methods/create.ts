/** admin.vm.Create.*, admin.vm.CreateInPool.*, admin.vm.CreateDisposable. */
import { qubeNameProblem } from '../../../shared/names.js';
import { SilentClose, err } from '../errors.js';
import { LABELS } from '../properties.js';
import type { Klass, VmState } from '../state.js';
import type { CallContext, MethodTable } from './types.js';
import { m } from './types.js';

const CREATABLE: readonly Klass[] = ['AppVM', 'DispVM', 'StandaloneVM', 'TemplateVM'];
const POOLS = new Set(['varlibqubes', 'linux-kernel']);

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
    const params = new Map<string, string>();
    let invalidLabel = false;
    let invalidPool = false;
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
      } else if (key === 'label') {
        if (!/^[a-zA-Z0-9_-]+$/.test(value)) throw err.protocol('label contains invalid characters');
        invalidLabel = !LABELS.some((l) => l.name === value);
      } else if (allowPool && (key === 'pool' || key.startsWith('pool:'))) {
        if (key.startsWith('pool:') && !['root', 'private', 'volatile', 'kernel'].includes(key.slice(5))) {
          throw err.protocol('Volume must be one of: root, private, volatile, kernel');
        }
        invalidPool = invalidPool || !POOLS.has(value);
      } else if (key === 'pool' || key.startsWith('pool:')) {
        throw err.protocol("Pool option specified but 'allow_pool' is False");
      } else {
        throw err.protocol('Options does not match: name, label, pool, pool:');
      }
      params.set(key, value);
    }
    const name = params.get('name');
    const label = params.get('label');
    if (name === undefined) throw err.protocol('Creation requested without key: name');
    if (label === undefined) throw err.protocol('Creation requested without key: label');
    if (app.get(name)) throw err.alreadyExists(name);
    if (invalidTemplate) throw err.vmNotFound(ctx.arg);
    if (invalidLabel) throw err.labelNotFound('untrusted label');
    if (invalidPool) throw err.generic('Pool not found');
    if (klass === 'AppVM' && !template) {
      const d = app.globalValue('default_template');
      template = typeof d === 'string' ? app.get(d) : undefined;
      if (!template) throw err.propertyValue("Property 'template' of " + name + ' has no value');
    }
    // a DispVM's template is checked by createDispVM: any qube with template_for_dispvms
    if (template && klass === 'AppVM' && template.klass !== 'TemplateVM') {
      throw err.value(`Template ${template.name} is not a TemplateVM`);
    }
    let vm: VmState;
    if (klass === 'DispVM') {
      if (!template) throw err.propertyValue("Property 'template' of " + name + ' has no value');
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
