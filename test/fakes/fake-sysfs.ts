// FakeSysfs: a temp-dir tree laid out like Linux's /sys for USB, for the Linux device source and
// enforcer (DESIGN.md §11). What the kernel does that matters to Sekimori is simulated:
// - devices live under `devices/pci0000:00/<controller>/usbN/…` and `bus/usb/devices/` holds
//   relative symlinks to them (devices and interfaces), so readers must follow symlinks;
// - root hubs `usbN` carry `authorized_default`; a plugged device starts with `authorized` derived
//   from it (-1 and 1 → 1, 0 → 0, 2 → 1 only on a hard-wired port), like usb_new_device();
// - interface directories (`1-1:1.0/…`) and, for storage, `host*/target*/*/block/sdX` exist only
//   while the device is authorised; devices behind a hub exist only while the hub is;
// - `syncKernel()` plays the kernel's reaction to writes: `authorized` 1/0 configures/unconfigures,
//   `remove` = 1 logically disconnects; `runKernel()` does so continuously in the background.
// Attribute files hold what the kernel prints (trailing newline included); `descriptors` is binary.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rootHub, type UsbFixture } from '../fixtures/usb-devices/devices.js';

export interface FakeBusOptions {
  readonly bus: number;
  /** PCI address of the host controller, e.g. `0000:00:14.0`. */
  readonly controller?: string;
  readonly superSpeed?: boolean;
  /** Initial `authorized_default` (kernel default: 1; `usbcore.authorized_default=-1` → -1). */
  readonly authorizedDefault?: -1 | 0 | 1 | 2;
  readonly ports?: number;
  /** Ports whose `connect_type` is `hardwired` (the rest are `hotplug`). */
  readonly hardwiredPorts?: readonly number[];
}

interface FakeDevice {
  readonly name: string;
  readonly fixture: UsbFixture;
  readonly bus: number;
  /** Real directory (not the bus symlink). */
  readonly dir: string;
  readonly isRootHub: boolean;
  configured: boolean;
  /** Block device names this device got the last time it was configured. */
  blockDevices: string[];
}

const DEVICE_NAME = /^(\d+)-(\d+(?:\.\d+)*)$/;
const HUB_PORTS = 4;

const hex2 = (value: number): string => value.toString(16).padStart(2, '0');

export class FakeSysfs {
  private readonly devices = new Map<string, FakeDevice>();
  private nextHost = 0;
  private nextDisk = 1; // sda is the PC's own disk
  private nextDevnum = 2;

  private constructor(readonly root: string) {}

  /** A tree with the given buses (default: bus 1 on an xHCI controller, kernel default authorized_default=1). */
  static async create(buses: readonly FakeBusOptions[] = [{ bus: 1 }]): Promise<FakeSysfs> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-sysfs-'));
    const sysfs = new FakeSysfs(root);
    await fs.mkdir(sysfs.busDir, { recursive: true });
    for (const bus of buses) await sysfs.addBus(bus);
    return sysfs;
  }

  private get busDir(): string {
    return path.join(this.root, 'bus', 'usb', 'devices');
  }

  /** Adds a root hub `usbN` (e.g. a second controller, or a Thunderbolt dock appearing). */
  async addBus(options: FakeBusOptions): Promise<void> {
    const controller = options.controller ?? '0000:00:14.0';
    const controllerDir = path.join(this.root, 'devices', 'pci0000:00', controller);
    await fs.mkdir(controllerDir, { recursive: true });
    await writeIfAbsent(path.join(this.root, 'devices', 'pci0000:00', 'uevent'), '');
    await writeIfAbsent(path.join(controllerDir, 'uevent'), `DRIVER=xhci_hcd\nPCI_CLASS=C0330\nPCI_ID=8086:A36D\nPCI_SLOT_NAME=${controller}\n`);
    const name = `usb${options.bus}`;
    const fixture = rootHub(options.superSpeed ?? false, controller);
    const dir = path.join(controllerDir, name);
    const device: FakeDevice = { name, fixture, bus: options.bus, dir, isRootHub: true, configured: false, blockDevices: [] };
    await this.writeDevice(device, 1, 1);
    await fs.writeFile(path.join(dir, 'authorized_default'), `${options.authorizedDefault ?? 1}\n`);
    await fs.writeFile(path.join(dir, 'interface_authorized_default'), '1\n');
    this.devices.set(name, device);
    const hardwired = new Set(options.hardwiredPorts ?? []);
    await this.configure(device, options.ports ?? 4, (port) => (hardwired.has(port) ? 'hardwired' : 'hotplug'));
  }

  /** Real directory of a device (`usb1`, `1-1`, `1-1.2`). */
  deviceDir(name: string): string {
    const device = this.devices.get(name);
    if (!device) throw new Error(`no device ${name} in the fake sysfs`);
    return device.dir;
  }

  /** Whether the device is present. */
  has(name: string): boolean {
    return this.devices.has(name);
  }

  /** An attribute as text, trailing newline stripped (`authorized`, `1-1:1.0/bInterfaceClass`, …). */
  async attribute(name: string, attribute: string): Promise<string> {
    return (await fs.readFile(path.join(this.deviceDir(name), attribute), 'utf8')).replace(/\n$/, '');
  }

  /** Writes an attribute as a root shell would (`echo 0 > …`). */
  async writeAttribute(name: string, attribute: string, value: string): Promise<void> {
    await fs.writeFile(path.join(this.deviceDir(name), attribute), `${value}\n`);
  }

  /** Block devices (`sdb`) the device has now. */
  blockDevicesOf(name: string): readonly string[] {
    const device = this.devices.get(name);
    return device?.configured ? device.blockDevices : [];
  }

  /**
   * Plugs a device into `port` (`1-1`, or `1-1.2` behind the hub at `1-1`). Like the kernel, it
   * enumerates (descriptors, strings) and is configured at once only if authorised by default.
   */
  async plug(fixture: UsbFixture, port: string): Promise<void> {
    const match = DEVICE_NAME.exec(port);
    if (!match) throw new Error(`not a device name: ${port}`);
    const bus = Number(match[1]);
    const portPath = match[2] ?? '';
    const lastDot = portPath.lastIndexOf('.');
    const parentName = lastDot < 0 ? `usb${bus}` : `${bus}-${portPath.slice(0, lastDot)}`;
    const portNumber = Number(portPath.slice(lastDot + 1));
    const parent = this.devices.get(parentName);
    if (!parent?.configured) throw new Error(`cannot plug into ${port}: ${parentName} is absent or not configured`);
    if (this.devices.has(port)) throw new Error(`${port} is occupied`);
    const device: FakeDevice = { name: port, fixture, bus, dir: path.join(parent.dir, port), isRootHub: false, configured: false, blockDevices: [] };
    await this.writeDevice(device, portNumber, this.nextDevnum++);
    const parentInterface = parent.isRootHub ? `${bus}-0:1.0` : `${parentName}:1.0`;
    const portDir = path.join(parent.dir, parentInterface, `${parentName}-port${portNumber}`);
    await fs.symlink(path.relative(device.dir, portDir), path.join(device.dir, 'port'));
    const connectType = (await fs.readFile(path.join(portDir, 'connect_type'), 'utf8')).trim();
    const authorized = await this.defaultAuthorization(bus, connectType);
    await fs.writeFile(path.join(device.dir, 'authorized'), `${authorized ? 1 : 0}\n`);
    this.devices.set(port, device);
    if (authorized) await this.configure(device, HUB_PORTS, () => 'unknown');
  }

  /** Physically unplugs a device (and everything behind it). */
  async unplug(name: string): Promise<void> {
    const device = this.devices.get(name);
    if (!device || device.isRootHub) return;
    await this.unconfigure(device);
    await fs.rm(path.join(this.busDir, name), { force: true });
    await fs.rm(device.dir, { recursive: true, force: true });
    this.devices.delete(name);
  }

  private syncing: Promise<void> = Promise.resolve();

  /**
   * Plays the kernel's reaction to what was written to `authorized` and `remove` since the last call.
   * Calls are serialised, as the kernel serialises them: a test's own call and the `runKernel()`
   * loop must not both configure one device (regression: a second disk appeared, flaking tests).
   */
  syncKernel(): Promise<void> {
    const pass = this.syncing.then(() => this.syncOnce());
    this.syncing = pass.catch(() => undefined);
    return pass;
  }

  private async syncOnce(): Promise<void> {
    const names = [...this.devices.keys()].sort((a, b) => a.length - b.length || a.localeCompare(b));
    for (const name of names) {
      const device = this.devices.get(name);
      if (!device) continue; // went away with its hub
      if (device.isRootHub) {
        await normalize(path.join(device.dir, 'authorized_default'));
        continue;
      }
      const remove = await readText(path.join(device.dir, 'remove'));
      if (remove === '1') {
        await this.unplug(name);
        continue;
      }
      const authorized = await normalize(path.join(device.dir, 'authorized'));
      if (authorized === '1' && !device.configured) await this.configure(device, HUB_PORTS, () => 'unknown');
      if (authorized === '0' && device.configured) await this.unconfigure(device);
    }
  }

  /** Runs `syncKernel()` every `intervalMs` until the returned stop() (awaits the pass in flight). */
  runKernel(intervalMs = 2): { stop(): Promise<void> } {
    let pass: Promise<void> = Promise.resolve();
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      pass = this.syncKernel()
        .catch(() => undefined) // a test removing the tree mid-pass is not a kernel failure
        .finally(() => {
          busy = false;
        });
    }, intervalMs);
    return {
      stop: async () => {
        clearInterval(timer);
        await pass;
      },
    };
  }

  async dispose(): Promise<void> {
    await fs.rm(this.root, { recursive: true, force: true });
  }

  private async defaultAuthorization(bus: number, connectType: string): Promise<boolean> {
    const value = await readText(path.join(this.deviceDir(`usb${bus}`), 'authorized_default'));
    switch (value) {
      case '0':
        return false;
      case '2':
        return connectType === 'hardwired';
      default:
        return true; // 1 and -1 (all but wireless; no wireless devices here)
    }
  }

  private async writeDevice(device: FakeDevice, portNumber: number, devnum: number): Promise<void> {
    const { fixture, dir, bus } = device;
    const descriptors = fixture.descriptors;
    await fs.mkdir(dir, { recursive: true });
    const [cls, sub, proto] = [descriptors[4] ?? 0, descriptors[5] ?? 0, descriptors[6] ?? 0];
    const bcdDevice = descriptors.readUInt16LE(12);
    const attributes: Record<string, string | Buffer> = {
      idVendor: `${fixture.expected.vendorId}\n`,
      idProduct: `${fixture.expected.productId}\n`,
      bcdDevice: `${bcdDevice.toString(16).padStart(4, '0')}\n`,
      bDeviceClass: `${hex2(cls)}\n`,
      bDeviceSubClass: `${hex2(sub)}\n`,
      bDeviceProtocol: `${hex2(proto)}\n`,
      bMaxPacketSize0: `${descriptors[7] ?? 0}\n`,
      bNumConfigurations: `${descriptors[17] ?? 0}\n`,
      bConfigurationValue: '\n',
      bNumInterfaces: '\n',
      busnum: `${bus}\n`,
      devnum: `${devnum}\n`,
      devpath: `${device.isRootHub ? 0 : device.name.split('-')[1] ?? portNumber}\n`,
      speed: `${fixture.speed}\n`,
      version: ` ${(descriptors.readUInt16LE(2) >> 8).toString(16)}.${hex2(descriptors.readUInt16LE(2) & 0xff)}\n`,
      avoid_reset_port: '0\n',
      descriptors,
      uevent:
        `MAJOR=189\nMINOR=${(bus - 1) * 128 + devnum - 1}\nDEVNAME=bus/usb/${String(bus).padStart(3, '0')}/${String(devnum).padStart(3, '0')}\n` +
        `DEVTYPE=usb_device\nDRIVER=usb\nPRODUCT=${Number.parseInt(fixture.expected.vendorId, 16).toString(16)}/${Number.parseInt(fixture.expected.productId, 16).toString(16)}/${bcdDevice.toString(16)}\n` +
        `TYPE=${cls}/${sub}/${proto}\nBUSNUM=${String(bus).padStart(3, '0')}\nDEVNUM=${String(devnum).padStart(3, '0')}\n`,
    };
    if (!device.isRootHub) attributes['remove'] = '';
    if (device.isRootHub) attributes['authorized'] = '1\n';
    for (const [key, value] of [['manufacturer', fixture.manufacturer], ['product', fixture.product], ['serial', fixture.serial]] as const) {
      if (value !== null) attributes[key] = Buffer.concat([value, Buffer.from('\n')]);
    }
    await Promise.all(Object.entries(attributes).map(([key, value]) => fs.writeFile(path.join(dir, key), value)));
    await fs.symlink(path.relative(this.busDir, dir), path.join(this.busDir, device.name));
  }

  /** The kernel's usb_set_configuration: first configuration, alternate setting 0 of each interface. */
  private async configure(device: FakeDevice, hubPorts: number, connectType: (port: number) => string): Promise<void> {
    const configuration = device.fixture.spec.configurations[0];
    if (!configuration) return;
    const active = configuration.interfaces.filter((spec) => (spec.alternate ?? 0) === 0);
    const prefix = device.isRootHub ? `${device.bus}-0` : device.name;
    device.blockDevices = [];
    for (const spec of active) {
      const interfaceName = `${prefix}:${configuration.value}.${spec.number}`;
      const dir = path.join(device.dir, interfaceName);
      const [cls = '00', sub = '00', proto = '00'] = spec.code.split(':');
      await fs.mkdir(dir, { recursive: true });
      const files: Record<string, string> = {
        bInterfaceClass: `${cls}\n`,
        bInterfaceSubClass: `${sub}\n`,
        bInterfaceProtocol: `${proto}\n`,
        bInterfaceNumber: `${hex2(spec.number)}\n`,
        bAlternateSetting: ` ${spec.alternate ?? 0}\n`,
        bNumEndpoints: `${hex2(spec.endpoints ?? 0)}\n`,
        uevent: `DEVTYPE=usb_interface\nINTERFACE=${Number.parseInt(cls, 16)}/${Number.parseInt(sub, 16)}/${Number.parseInt(proto, 16)}\n`,
      };
      if (spec.name !== undefined) files['interface'] = `${spec.name}\n`;
      await Promise.all(Object.entries(files).map(([key, value]) => fs.writeFile(path.join(dir, key), value)));
      await fs.symlink(path.relative(this.busDir, dir), path.join(this.busDir, interfaceName));
      if (cls === '08') device.blockDevices.push(await this.attachDisk(dir));
      if (cls === '09') await this.addPorts(dir, device.isRootHub ? `usb${device.bus}` : device.name, hubPorts, connectType);
    }
    await fs.writeFile(path.join(device.dir, 'bConfigurationValue'), `${configuration.value}\n`);
    await fs.writeFile(path.join(device.dir, 'bNumInterfaces'), `${String(new Set(active.map((spec) => spec.number)).size).padStart(2, ' ')}\n`);
    device.configured = true;
  }

  private async attachDisk(interfaceDir: string): Promise<string> {
    const host = this.nextHost++;
    const disk = `sd${String.fromCharCode(0x61 + this.nextDisk++)}`;
    const blockParent = path.join(interfaceDir, `host${host}`, `target${host}:0:0`, `${host}:0:0:0`, 'block');
    // Built aside and renamed into place so a test sees the disk and its partition together. (The
    // kernel adds partitions just after the disk; a partition that appears after `blockdev --setro`
    // on its disk inherits the read-only flag, so that order does not matter to the enforcer.)
    const staging = path.join(this.root, `.staging-${disk}`);
    await fs.mkdir(path.join(staging, `${disk}1`), { recursive: true });
    await fs.writeFile(path.join(staging, 'ro'), '0\n');
    await fs.writeFile(path.join(staging, 'removable'), '1\n');
    await fs.writeFile(path.join(staging, 'size'), '60063744\n');
    await fs.writeFile(path.join(staging, `${disk}1`, 'ro'), '0\n');
    await fs.writeFile(path.join(staging, `${disk}1`, 'partition'), '1\n');
    await fs.mkdir(blockParent, { recursive: true });
    await fs.rename(staging, path.join(blockParent, disk));
    return disk;
  }

  private async addPorts(interfaceDir: string, hubName: string, count: number, connectType: (port: number) => string): Promise<void> {
    for (let port = 1; port <= count; port += 1) {
      const dir = path.join(interfaceDir, `${hubName}-port${port}`);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, 'connect_type'), `${connectType(port)}\n`);
    }
  }

  private async unconfigure(device: FakeDevice): Promise<void> {
    for (const child of [...this.devices.values()]) {
      if (path.dirname(child.dir) === device.dir) await this.unplug(child.name);
    }
    const entries = await fs.readdir(device.dir);
    for (const entry of entries.filter((name) => name.includes(':'))) {
      await fs.rm(path.join(this.busDir, entry), { force: true });
      await fs.rm(path.join(device.dir, entry), { recursive: true, force: true });
    }
    await fs.writeFile(path.join(device.dir, 'bConfigurationValue'), '\n');
    device.configured = false;
    device.blockDevices = [];
  }
}

async function writeIfAbsent(file: string, content: string): Promise<void> {
  await fs.writeFile(file, content, { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
}

async function readText(file: string): Promise<string | null> {
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch {
    return null;
  }
}

/** Rewrites an attribute the way the kernel prints it back (`0` written → `0\n` read). */
async function normalize(file: string): Promise<string | null> {
  let raw: string;
  try {
    raw = await fs.readFile(file, 'utf8');
  } catch {
    return null;
  }
  const value = raw.trim();
  // Only a value as a writer left it (no trailing newline) is rewritten. A value that already reads
  // back like the kernel's is left alone: rewriting it would race with a writer — the agent's
  // `authorized=1` landing between this read and the write was overwritten with the stale `0`, and
  // the disk never appeared (the flaky read-only tests). An empty file is a writer caught between
  // its O_TRUNC and its write: also left alone.
  if (value !== '' && !raw.endsWith('\n')) await fs.writeFile(file, `${value}\n`);
  return value;
}
