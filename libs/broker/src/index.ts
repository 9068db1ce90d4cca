export type {
  Channel,
  ChannelModel,
  ConfirmChannel,
  ConsumeMessage,
  Options,
  RecoveringChannelModel,
  Replies,
} from 'amqplib';
export { connect } from 'amqplib';
export * from './topology';
export * from './connection';
export * from './publish';
export * from './receipt';
