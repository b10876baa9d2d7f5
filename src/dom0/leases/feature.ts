/** Reading a qube's lease, which only dom0 writes (the `qmcp-lease-expires` feature). */
import { LEASE_FEATURE } from '../../shared/model/lease.js';
import type { Qubesd } from '../qubesd.js';

/** The qube's expiry as dom0 wrote it; null when it has no lease. */
export async function leaseOf(qubesd: Qubesd, qube: string): Promise<string | null> {
  if (!(await qubesd.call('admin.vm.feature.List', qube)).split('\n').includes(LEASE_FEATURE)) return null;
  return qubesd.call('admin.vm.feature.Get', qube, LEASE_FEATURE);
}
