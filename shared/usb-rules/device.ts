import { z } from 'zod';

/** Generous bound for descriptor strings: a USB string descriptor holds at most 126 UTF-16 units. */
const MAX_TEXT = 1024;
/** Every interface of every configuration and alternate setting; real devices have a few dozen. */
const MAX_INTERFACES = 256;

const hex4 = z.string().regex(/^[0-9a-f]{4}$/, 'must be 4 lower-case hex digits');
const text = z.string().max(MAX_TEXT);

/**
 * The identity of one USB device as rules see it: the fields of USBGuard's device rule
 * (`DevicePrivate::getDeviceRule`), which the agent builds from sysfs / the OS and journals.
 *
 * - `vendorId`, `productId`: 4 lower-case hex digits.
 * - `serial`, `name`: the iSerial / product strings, `''` when the device has none.
 * - `hash`, `parentHash`: USBGuard-compatible device hashes (base64), `parentHash` of the parent hub.
 * - `viaPort`: the port, e.g. `1-2.1` (Linux) — unstable across reboots, see the man page.
 * - `connectType`: sysfs `port/connect_type` (`hotplug`, `hardwired`, …) or `''`.
 * - `interfaces`: `cc:ss:pp` (lower-case hex) of every interface descriptor of every configuration,
 *   alternate settings included, in descriptor order and with duplicates kept — exactly the list
 *   USBGuard matches `with-interface` against (a webcam lists `0e:02:00` once per alternate
 *   setting). Sizes matter to `equals` and `equals-ordered`.
 * - `interfaceNames` (Sekimori extension, optional): the iInterface string of each entry of
 *   `interfaces`, index for index (`''` when none). Only the `mtp` and `phone` class names read it:
 *   MTP is a vendor-specific (`ff`) interface named "MTP", which codes alone cannot tell apart.
 */
export const UsbDeviceIdentitySchema = z
  .strictObject({
    vendorId: hex4,
    productId: hex4,
    serial: text,
    name: text,
    hash: text,
    parentHash: text,
    viaPort: text,
    connectType: text,
    interfaces: z
      .array(z.string().regex(/^[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/, 'must be cc:ss:pp in lower-case hex'))
      .max(MAX_INTERFACES),
    interfaceNames: z.array(text).max(MAX_INTERFACES).optional(),
  })
  .refine((device) => device.interfaceNames === undefined || device.interfaceNames.length === device.interfaces.length, {
    message: 'interfaceNames must have one entry per interface',
    path: ['interfaceNames'],
  });

/** See `UsbDeviceIdentitySchema`. */
export type UsbDeviceIdentity = z.infer<typeof UsbDeviceIdentitySchema>;
