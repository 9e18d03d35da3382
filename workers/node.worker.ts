// The broker node's worker: one per Letterbox instance (per tab).
import { exposeBrokerNode } from '../src/node';

exposeBrokerNode(self);
