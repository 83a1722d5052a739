import { Module } from '@nestjs/common';
import { ConsoleController } from './console.controller';

/** The web console at /console (static page and script; see console.controller.ts). */
@Module({ controllers: [ConsoleController] })
export class ConsoleModule {}
