import type { ValidatedPolicy } from '../../shared/policy.js';
import type { UsbDeviceIdentity } from '../../shared/usb-rules/index.js';
import { decideUsb } from '../usb/policy-engine.js';
import type { ExportChannel, MediaDecision } from './media-control.linux.js';

/** Mass storage, SFF-8020i (ATAPI: CD/DVD drives) and SCSI transparent (disks, card readers). */
const OPTICAL_INTERFACE = '08:02:50';
const DISK_INTERFACE = '08:06:50';

/**
 * The policy's decision for an export channel that is not a USB device (an internal optical drive,
 * an SD card in a built-in reader, a Thunderbolt/USB4 device or disk): it is judged as a removable
 * storage device with no USB identity (vendor and product `0000`), so the tier's storage rules
 * decide it exactly as they decide an unregistered USB stick — `block` on マイナンバー利用事務系,
 * read-only on LGWAN接続系, `block` on インターネット接続系 unless a rule allows storage. Rules naming a
 * USB id or serial never match it; `reject` becomes `block` (there is nothing to disconnect).
 */
export function decideAsStorage(channel: ExportChannel, name: string, serial: string, policy: ValidatedPolicy, now: Date): MediaDecision {
  const identity: UsbDeviceIdentity = {
    vendorId: '0000',
    productId: '0000',
    serial: serial.slice(0, 1024),
    name: name.slice(0, 1024),
    hash: '',
    parentHash: '',
    viaPort: '',
    connectType: '',
    interfaces: [channel === 'optical' ? OPTICAL_INTERFACE : DISK_INTERFACE],
  };
  const decision = decideUsb({ device: identity, policy, now });
  return { target: decision.target === 'reject' ? 'block' : decision.target, rule: { ...decision.rule, treatedAs: 'removable storage' }, audit: decision.audit };
}
