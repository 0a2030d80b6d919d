// Placeholder: the real hello example replaces this.
console.log('hello from stepline');
