/**
 * calf's networking, levels 07 and 08: `--network` modes, networks with their address pools and
 * bridges, endpoints (veth pairs), published ports, and the `calf network` commands.
 * @module
 */
export { networkMode, NETWORK_MODES } from './mode.js';
export {
  createEndpoint, removeEndpoint, createNetwork, removeNetwork, listNetworks, findNetwork, DEFAULT_NETWORK,
  type Endpoint, type Network,
} from './networks.js';
export { ip, ipIn, linkExists, deleteLink } from './ip.js';
export { parsePublish, listen, splice, type PortMapping } from './publish.js';
export { networkCommand } from './commands.js';
