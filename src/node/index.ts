export { createBrokerNode, databaseNameOf, type BrokerNodeComponents } from './broker';
export { validateTopicName, configEntriesOf } from './topics';
export { SLOTS_MAX, slotLockName } from './slots';
export type * from './api';
export { exposeBrokerNode } from './expose';
