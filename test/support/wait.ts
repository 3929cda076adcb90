export { waitFor, waitForValue, WaitTimeoutError, type WaitOptions } from "@stafett/devkit";
