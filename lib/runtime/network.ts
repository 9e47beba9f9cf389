/**
 * A container's place on a network, as `calf run` makes it: policy around lib/network's CNM
 * pieces that is not a lesson of its own.
 * @module
 */
import { createEndpoint, type Endpoint } from '../network/networks.js';
import type { Container } from './container.js';
import { updateState } from './state.js';

/**
 * The container's endpoint on network `name`: an address leased from its pool (IPAM: the lowest
 * free one, under the pool's lock), released by the container's teardown list, and kept in its
 * record while it runs. None for
 * `--network none` or `host`: those have no address of calf's.
 */
export function joinNetwork(container: Pick<Container, 'teardown' | 'dir'>, name: string): Endpoint | undefined {
  if (name === 'none' || name === 'host') return undefined;
  const endpoint = createEndpoint(name);
  container.teardown.add('removeEndpoint', endpoint); // the veth and the lease go however calf exits
  updateState(container.dir, { endpoint }); // what calf ps and calf inspect show (level 15)
  return endpoint;
}
